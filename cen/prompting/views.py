"""Showing requests in notebook 03: summaries, the text as sent, the images sent."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Sequence

import numpy as np

from cen.prompting.images import decode_data_url
from cen.prompting.requests import PromptRequest
from cen.prompting.templates import PromptError

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def summarize_requests(requests: Sequence[PromptRequest]) -> str:
    """One line: how many requests, for how many distinct tiles, with which template versions."""
    tiles = {t for r in requests for t in r.tile_ids}
    return (f"{len(requests)} requests for {len(tiles)} tiles; "
            f"templates: {sorted({r.template_version for r in requests})}")


def first_request(requests: Sequence[PromptRequest], paradigm: str) -> PromptRequest | None:
    """The first request of ``paradigm`` (``"gpt35"`` / ``"gpt4v"``), or ``None`` if there is none."""
    return next((r for r in requests if r.paradigm == paradigm), None)


def format_request(request: PromptRequest, max_chars: int | None = None) -> str:
    """The text of a request's messages exactly as sent, one ``--- role ---`` header per message.

    Image parts are listed as ``[image: <mime>]`` (see :func:`plot_request_images`); a text longer
    than ``max_chars`` is cut there and marked `` [...]``. The last line gives the messages hash
    (first 16 hex digits) and the template version.
    """
    def cut(text: str) -> str:
        return text if max_chars is None or len(text) <= max_chars else text[:max_chars] + " [...]"

    lines = []
    for m in request.messages:
        lines.append(f"--- {m['role']} ---")
        content = m["content"]
        if isinstance(content, str):
            lines.append(cut(content))
            continue
        for part in content:
            if part.get("type") == "text":
                lines.append(cut(part["text"]))
            elif part.get("type") == "image_url":
                lines.append(f"[image: {decode_data_url(part['image_url']['url'])[0]}]")
    lines.append(f"messages hash {request.messages_hash[:16]}..., template {request.template_version}")
    return "\n".join(lines)



def request_images(request: PromptRequest) -> list[tuple[str, np.ndarray]]:
    """The images sent with a request, in message order: ``[(mime, (H, W, 3) uint8), ...]``."""
    from PIL import Image

    out = []
    for m in request.messages:
        if isinstance(m["content"], str):
            continue
        for part in m["content"]:
            if part.get("type") == "image_url":
                mime, data = decode_data_url(part["image_url"]["url"])
                out.append((mime, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))))
    return out


def plot_request_images(request: PromptRequest) -> Figure:
    """The images of a (GPT-4V) request side by side, each titled with the MIME type it was labelled
    with, under a title naming the template version and the tiles per request."""
    import matplotlib.pyplot as plt

    images = request_images(request)
    if not images:
        raise PromptError(f"request {request.request_id}: no images to show")
    fig, axes = plt.subplots(1, len(images), figsize=(2.2 * len(images), 2.4), squeeze=False)
    for ax, (mime, img) in zip(axes[0], images):
        ax.imshow(img)
        ax.set_title(mime, fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{request.template_version}: {len(request.tile_ids)} tile(s) per request", fontsize=9)
    return fig

