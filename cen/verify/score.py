"""Label-consistency score: how well a caption's claims agree with the tile's land-cover statistics.

N-gram metrics (BLEU, CIDEr) cannot see a hallucinated lake; this score can. For one caption
and its ``(6, 12)`` region counts:

* ``precision``: share of the classes the caption mentions that the tile has
  (NaN when it mentions none);
* ``recall``: share of the tile's notable classes (≥ ``recall_share`` of the tile and ≥
  ``recall_min_pixels``) that the caption mentions (NaN when the tile has none);
* ``spatial_accuracy``: share of correct region claims ("crops in the top left", "no water in
  the middle"; NaN without any);
* ``proportion_accuracy``: share of proportion words consistent with the measured share;
* ``score``: the mean of the four that are defined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from cen import landcover
from cen.verify import lexicon as lx
from cen.verify.checks import CheckConfig, RegionTable, claim_bases, validate_counts
from cen.verify.parse import ParsedCaption, parse_caption

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SCORE_COLUMNS = ["precision", "recall", "f1", "spatial_accuracy", "proportion_accuracy", "score",
                 "n_mentioned", "n_hallucinated", "n_omitted", "n_spatial_claims", "n_proportion_claims"]


def _score_parsed(parsed: ParsedCaption, counts: np.ndarray | RegionTable, config: CheckConfig,
                  recall_share: float, recall_min_pixels: int) -> dict[str, float]:
    tab = counts if isinstance(counts, RegionTable) else RegionTable(counts)
    whole = tab.counts[lx.WHOLE]
    mentioned = parsed.mentioned
    present = {c for c in mentioned if whole[c] >= config.min_pixels}
    notable = {c for c in range(1, landcover.N_INDICES)
               if whole[c] >= recall_min_pixels and tab.share((lx.WHOLE,), c) >= recall_share}
    precision = len(present) / len(mentioned) if mentioned else np.nan
    recall = len(notable & mentioned) / len(notable) if notable else np.nan
    if np.isfinite(precision) and np.isfinite(recall):
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    else:
        f1 = np.nan
    claims = parsed.spatial_claims
    correct = sum(
        (tab.share(m.regions, m.cls) <= config.denial_share) if m.negated
        else (tab.count(m.regions, m.cls) >= config.min_pixels)
        for m in claims
    )
    spatial = correct / len(claims) if claims else np.nan
    props = parsed.proportions
    ok = sum(tab.proportion_ok(p.word, p.regions, p.cls, p.low, p.high, config, of)[0]
             for p, of in zip(props, claim_bases(parsed)))
    proportion = ok / len(props) if props else np.nan
    parts = [v for v in (precision, recall, spatial, proportion) if np.isfinite(v)]
    return {
        "precision": precision, "recall": recall, "f1": f1, "spatial_accuracy": spatial,
        "proportion_accuracy": proportion, "score": float(np.mean(parts)) if parts else np.nan,
        "n_mentioned": len(mentioned), "n_hallucinated": len(mentioned - present),
        "n_omitted": len(notable - mentioned), "n_spatial_claims": len(claims), "n_proportion_claims": len(props),
    }


def consistency_score(caption: str, region_counts: np.ndarray, config: CheckConfig = CheckConfig(),
                      recall_share: float = 0.05, recall_min_pixels: int = 20) -> dict[str, float]:
    """Label-consistency of one caption against its ``(6, 12)`` region counts (keys :data:`SCORE_COLUMNS`)."""
    counts = validate_counts(region_counts)
    if counts.ndim != 2:
        raise ValueError(f"consistency_score takes one caption's (6, 12) counts, got shape {counts.shape}; "
                         "use score_table for many")
    return _score_parsed(parse_caption(caption or ""), counts, config, recall_share, recall_min_pixels)


def score_table(captions: Sequence[str], region_counts: np.ndarray, config: CheckConfig = CheckConfig(),
                recall_share: float = 0.05, recall_min_pixels: int = 20, progress: bool = False) -> pd.DataFrame:
    """:func:`consistency_score` for many captions: ``(N,)`` texts and ``(N, 6, 12)`` counts -> N rows."""
    counts = validate_counts(region_counts)
    texts = list(captions)
    if counts.ndim != 3 or len(counts) != len(texts):
        raise ValueError(f"score_table: {len(texts)} captions need counts of shape ({len(texts)}, 6, 12), "
                         f"got {counts.shape}")
    rows = [
        _score_parsed(parse_caption(t if isinstance(t, str) else ""), counts[i], config, recall_share, recall_min_pixels)
        for i, t in enumerate(tqdm(texts, desc="label consistency", disable=not progress, unit="caption"))
    ]
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def summarize_scores(scores: pd.DataFrame) -> dict[str, float]:
    """Means of the score columns over captions where each is defined (NaN-skipping)."""
    return {c: float(scores[c].mean()) for c in ("precision", "recall", "f1", "spatial_accuracy",
                                                  "proportion_accuracy", "score")}


VERIFIED_SCORE_COLUMNS = ["consistency", "label_precision", "label_recall", "spatial_accuracy"]
"""The score columns of a verified captions table (``captions_verified.parquet``)."""


def describe_scores(table: pd.DataFrame, columns: Sequence[str] = VERIFIED_SCORE_COLUMNS) -> pd.DataFrame:
    """Count (captions where defined), mean, min and max of each score column, one row per column."""
    return table[list(columns)].describe().T[["count", "mean", "min", "max"]]


def plot_consistency(scores: pd.Series | pd.DataFrame, title: str = "Label consistency of the generated captions",
                     bins: int = 20) -> Figure:
    """Histogram of label-consistency scores on [0, 1] (a Series, or a table's ``consistency``
    column; undefined scores are left out)."""
    import matplotlib.pyplot as plt

    values = scores["consistency"] if isinstance(scores, pd.DataFrame) else scores
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(values.dropna(), bins=bins, range=(0, 1), color="tab:green")
    ax.set_xlabel("label-consistency score")
    ax.set_ylabel("captions")
    ax.set_title(title)
    fig.tight_layout()
    return fig
