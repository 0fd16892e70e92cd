"""Caption generation: backends (``openai``, ``template``), concurrency, retries, cache, Batch API, ledger.

* :mod:`cen.generate.template` -- the offline captioner (``template_caption``);
* :mod:`cen.generate.runner` -- :func:`generate` / :func:`generate_for_workdir`, the captions table and its merge;
* :mod:`cen.generate.direct` -- workers, retries, circuit breaker, in-flight recovery;
* :mod:`cen.generate.openai_backend`, :mod:`~cen.generate.batch` -- one attempt through the real ``openai``
  client, the Batch API;
* :mod:`cen.generate.cache`, :mod:`~cen.generate.ledger`, :mod:`~cen.generate.ratelimit`,
  :mod:`~cen.generate.split` -- cache, the run's cost ledger and budget, pacing under the provider's
  rate limits and back-off, answer splitting;
* :mod:`cen.generate.console` -- what ``cen generate`` prints: the outcome, one line per failure reason;
* :mod:`cen.generate.views` -- summaries and figures of a captions table (notebook 03).

The offline captioner is importable without the network stack::

    from cen.generate.template import template_caption
"""

from cen.generate.template import TEMPLATE_CAPTIONER_VERSION, caption_from_counts, template_caption

DEFAULT_PARADIGMS = ("gpt35", "gpt4v")
"""Paradigms generated when none is named: ``cen generate`` and notebook 03's ``paradigms`` agree."""

__all__ = [
    "DEFAULT_PARADIGMS", "TEMPLATE_CAPTIONER_VERSION", "caption_from_counts", "template_caption",
    "GenerateConfig", "GenerationInterrupted", "GenerationResult", "generate", "generate_for_workdir",
    "read_captions", "write_captions", "merge_captions", "build_workdir_requests", "caption_summary",
    "plot_captions", "status_table",
]


def __getattr__(name: str):  # lazy: importing the template captioner does not import pandas/openai
    if name in {"GenerateConfig", "GenerationInterrupted", "GenerationResult", "generate", "generate_for_workdir",
                "read_captions", "write_captions", "merge_captions", "build_workdir_requests", "CAPTION_COLUMNS",
                "OK_STATUSES", "caption_summary", "plot_captions", "status_table"}:
        from cen.generate import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'cen.generate' has no attribute {name!r}")
