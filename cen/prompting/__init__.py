"""Prompts: versioned templates (data files in ``cen/prompts/``), message building, tokens and cost.

Two paradigms of the ChatEarthNet release, transcribed exactly (see ``cen/prompts/README.md``):

* ``gpt35`` -- one request per tile: a system message (six constraints) and a user message
  embedding :func:`cen.stats.gpt35_context` (``stats.parquet`` column ``gpt35_context``);
* ``gpt4v`` -- one user message for four tiles: the colour legend, per tile the per-class and
  per-region blocks of :func:`cen.stats.gpt4v_context`, eight constraints, then the four label
  maps rendered in ChatEarthNet colours, downsampled to 128 px by keeping every 2nd pixel, as PNG
  data URLs (``compat=True`` labels them ``image/jpeg`` as the release did).

Beyond the release: ``rgb=True`` sends each tile's Sentinel-2 true-colour picture beside its
label map, and the templates ``cen-gpt4v-single-v1`` / ``-v2`` ask about one tile per request (no
cross-image mix-ups by construction).

Every :class:`PromptRequest` carries its template name and version and ``messages_hash``, the
SHA-256 of the canonical JSON of the exact messages. :func:`count_message_tokens` and
:func:`estimate_cost` give the token count and the money before a run.

One module per concept, all names importable from here:

* :mod:`~cen.prompting.templates` -- :func:`load_template`, :class:`PromptTemplate`, :class:`PromptError`;
* :mod:`~cen.prompting.images` -- label maps / pictures as PNG data URLs, :func:`load_label_maps`, :func:`load_rgb`;
* :mod:`~cen.prompting.messages` -- :func:`gpt35_messages`, :func:`gpt4v_messages`, :func:`messages_hash`;
* :mod:`~cen.prompting.requests` -- :class:`PromptRequest`, :func:`build_requests`, :func:`group_tiles`;
* :mod:`~cen.prompting.tokens` -- :data:`PRICES`, :func:`price_for`, token counts, :func:`estimate_cost`;
* :mod:`~cen.prompting.views` -- :func:`format_request`, :func:`plot_request_images` (notebook 03).
"""

from cen.prompting.images import (
    data_url, decode_data_url, downsample_skip, image_hash, label_map_png, load_label_maps, load_rgb, png_bytes,
    rgb_png,
)
from cen.prompting.messages import gpt4v_messages, gpt4v_text, gpt35_messages, messages_hash
from cen.prompting.requests import PromptRequest, build_requests, group_tiles
from cen.prompting.templates import (
    DEFAULT_TEMPLATES, PROMPTS_DIR, SINGLE_TILE_VISION_TEMPLATE, PromptError, PromptTemplate, list_templates,
    load_template,
)
from cen.prompting.tokens import (
    PRICES, Price, TokenCounter, cost_usd, count_message_tokens, estimate_cost, merge_estimates, price_for, release_caption_counts,
    release_cost_table, release_models, token_counter,
)
from cen.prompting.views import first_request, format_request, plot_request_images, request_images, summarize_requests

__all__ = [
    "DEFAULT_TEMPLATES", "PRICES", "PROMPTS_DIR", "SINGLE_TILE_VISION_TEMPLATE", "Price", "PromptError", "PromptRequest",
    "PromptTemplate", "TokenCounter", "build_requests", "cost_usd", "count_message_tokens", "data_url",
    "decode_data_url", "downsample_skip", "estimate_cost", "first_request", "merge_estimates", "format_request", "gpt35_messages",
    "gpt4v_messages", "gpt4v_text", "group_tiles", "image_hash", "label_map_png", "list_templates", "load_label_maps",
    "load_rgb", "load_template", "messages_hash", "plot_request_images", "png_bytes", "price_for",
    "release_caption_counts", "release_cost_table", "release_models", "request_images", "rgb_png",
    "summarize_requests", "token_counter",
]
