"""Caption generation: backends (``openai``, ``template``), concurrency, retries, cache, Batch API, ledger.

The offline captioner is importable without the network stack::

    from cen.generate.template import template_caption
"""

from cen.generate.template import TEMPLATE_CAPTIONER_VERSION, caption_from_counts, template_caption

__all__ = ["TEMPLATE_CAPTIONER_VERSION", "caption_from_counts", "template_caption"]
