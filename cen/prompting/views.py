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


def image_titles(request: PromptRequest, n_images: int) -> list[str]:
    """What each image of a request shows, in message order: ``"<ordinal> tile <id>: label map"``
    (and ``"...: Sentinel-2 true colour"`` for the picture sent beside it with ``rgb=True``)."""
    ordinals = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
    tiles = list(request.tile_ids)
    per_tile = n_images // len(tiles) if tiles and n_images % len(tiles) == 0 else 1
    kinds = ["label map", "Sentinel-2 true colour"][:per_tile] if per_tile <= 2 else [f"image {k + 1}" for k in range(per_tile)]
    out = []
    for k in range(n_images):
        t = k // per_tile
        name = f"{ordinals[t] if t < len(ordinals) else t + 1} tile {tiles[t]}" if t < len(tiles) else f"image {k + 1}"
        out.append(f"{name}:\n{kinds[k % per_tile]}")
    return out


def plot_request_images(request: PromptRequest) -> Figure:
    """The images of a (GPT-4V) request side by side, each titled with what it shows (which tile,
    label map or picture: :func:`image_titles`), with the legend of the classes' colours, under a
    title naming the template version, the tiles per request and the MIME type they were sent as."""
    import matplotlib.pyplot as plt

    from cen.stats import class_legend_handles

    images = request_images(request)
    if not images:
        raise PromptError(f"request {request.request_id}: no images to show")
    fig, axes = plt.subplots(1, len(images), figsize=(2.4 * len(images) + 1.6, 2.9), squeeze=False)
    for ax, img, title in zip(axes[0], [im for _, im in images], image_titles(request, len(images))):
        ax.imshow(img)
        ax.set_title(title, fontsize=7)
        ax.axis("off")
    mimes = sorted({m for m, _ in images})
    fig.legend(handles=class_legend_handles(), loc="center right", fontsize=6, frameon=False, title="classes",
               title_fontsize=7)
    fig.subplots_adjust(right=1 - 1.5 / fig.get_figwidth())
    fig.suptitle(f"{request.template_version}: {len(request.tile_ids)} tile(s) per request, sent as "
                 f"{', '.join(mimes)}", fontsize=9)
    return fig
