"""Summaries and figures of a captions table (notebook 03): status counts, key numbers, captions
beside their label maps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

OK_STATUSES = ("ok", "cached", "recovered")
"""Final statuses of a caption that has an answer."""


def status_table(captions: pd.DataFrame) -> pd.DataFrame:
    """Captions per paradigm and final status (columns ``paradigm``, ``status``, ``captions``)."""
    return captions.groupby(["paradigm", "status"]).size().rename("captions").reset_index()


def caption_summary(captions: pd.DataFrame) -> dict[str, Any]:
    """Key numbers of a captions table: ``n_tiles``, ``n_captions``, ``n_ok`` (status in
    :data:`OK_STATUSES`), ``n_failed`` (status ``failed``), ``n_missing`` (every caption without an
    answer: failed, budget_stopped, stopped, unsplittable, not_sent), ``paradigms`` (sorted) and
    ``mean_words`` (of the answered captions; 0.0 when there are none)."""
    ok = captions["status"].isin(OK_STATUSES)
    words = captions.loc[ok, "text"].str.split().str.len()
    return {
        "n_tiles": int(captions["tile_id"].nunique()),
        "n_captions": int(len(captions)),
        "n_ok": int(ok.sum()),
        "n_failed": int((captions["status"] == "failed").sum()),
        "n_missing": int((~ok).sum()),
        "paradigms": sorted(captions["paradigm"].unique().tolist()),
        "mean_words": float(words.mean()) if len(words) else 0.0,
    }


def plot_captions(captions: pd.DataFrame, labels: Mapping[str, np.ndarray],
                  pictures: Mapping[str, np.ndarray | None] | None = None, width: int = 110) -> Figure | None:
    """One row per tile of ``labels`` (in caption order): its label map in ChatEarthNet colours,
    its Sentinel-2 picture when ``pictures`` has one, and every paradigm's caption (``[paradigm]
    text``, wrapped at ``width`` characters), above the legend of the classes' colours. ``labels``: ``{tile_id: (H, W) indices}``
    (:func:`cen.prompting.load_label_maps`); ``pictures``: :func:`cen.prompting.load_rgb`.
    Returns ``None`` when no captioned tile has a label map."""
    import textwrap

    import matplotlib.pyplot as plt

    from cen.landcover import indices_to_colour

    shown = captions[captions["tile_id"].astype(str).isin(labels)].drop_duplicates(["tile_id", "paradigm"])
    groups = list(shown.groupby("tile_id", sort=False))
    if not groups:
        return None
    pictures = {t: p for t, p in (pictures or {}).items() if p is not None}
    with_pic = any(str(t) in pictures for t, _ in groups)
    ratios = [1, 1, 2.4] if with_pic else [1, 2.4]
    fig, axes = plt.subplots(len(groups), len(ratios), figsize=(11 + 3.2 * with_pic, 3.6 * len(groups)),
                             gridspec_kw={"width_ratios": ratios}, squeeze=False)
    for row, (tile_id, group) in zip(axes, groups):
        ax_img, ax_txt = row[0], row[-1]
        ax_img.imshow(indices_to_colour(labels[str(tile_id)]))
        ax_img.set_title(str(tile_id), fontsize=7)
        ax_img.axis("off")
        if with_pic:
            if str(tile_id) in pictures:
                row[1].imshow(pictures[str(tile_id)])
                row[1].set_title("Sentinel-2 (true colour)", fontsize=7)
            row[1].axis("off")
        text = "\n\n".join(f"[{p}] " + textwrap.fill(str(t), width) for p, t in zip(group["paradigm"], group["text"]))
        ax_txt.text(0, 1, text, va="top", fontsize=7, family="serif", wrap=True)
        ax_txt.axis("off")
    from cen.stats import class_legend_handles

    fig.legend(handles=class_legend_handles(), loc="lower center", ncol=6, fontsize=7, frameon=False)
    return fig
