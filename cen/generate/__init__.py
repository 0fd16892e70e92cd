"""Caption generation: backends (``openai``, ``template``), concurrency, retries, cache, Batch API, ledger.

* :mod:`cen.generate.template` -- the offline captioner (``template_caption``);
* :mod:`cen.generate.runner` -- :func:`generate` / :func:`generate_for_workdir` and the captions table;
* :mod:`cen.generate.openai_backend`, :mod:`~cen.generate.batch` -- the real ``openai`` client, Batch API;
* :mod:`cen.generate.cache`, :mod:`~cen.generate.ledger`, :mod:`~cen.generate.ratelimit`,
  :mod:`~cen.generate.split` -- cache, cost ledger, rate limits and back-off, answer splitting.

The offline captioner is importable without the network stack::

    from cen.generate.template import template_caption
"""

from cen.generate.template import TEMPLATE_CAPTIONER_VERSION, caption_from_counts, template_caption

__all__ = [
    "TEMPLATE_CAPTIONER_VERSION", "caption_from_counts", "template_caption",
    "GenerateConfig", "GenerationResult", "generate", "generate_for_workdir", "read_captions", "write_captions",
    "build_workdir_requests", "caption_summary", "plot_captions", "status_table",
]


def __getattr__(name: str):  # lazy: importing the template captioner does not import pandas/openai
    if name in {"GenerateConfig", "GenerationResult", "generate", "generate_for_workdir", "read_captions",
                "write_captions", "build_workdir_requests", "CAPTION_COLUMNS", "OK_STATUSES", "caption_summary",
                "plot_captions", "status_table"}:
        from cen.generate import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'cen.generate' has no attribute {name!r}")
