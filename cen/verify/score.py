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

from typing import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from cen import landcover
from cen.verify import lexicon as lx
from cen.verify.checks import CheckConfig, _union_share, region_shares, validate_counts
from cen.verify.parse import ParsedCaption, parse_caption

SCORE_COLUMNS = ["precision", "recall", "f1", "spatial_accuracy", "proportion_accuracy", "score",
                 "n_mentioned", "n_hallucinated", "n_omitted", "n_spatial_claims", "n_proportion_claims"]


def _score_parsed(parsed: ParsedCaption, counts: np.ndarray, config: CheckConfig,
                  recall_share: float, recall_min_pixels: int) -> dict[str, float]:
    whole = counts[lx.WHOLE]
    shares = region_shares(counts)[lx.WHOLE]
    mentioned = parsed.mentioned
    present = {c for c in mentioned if whole[c] >= config.min_pixels}
    notable = {int(c) for c in range(1, landcover.N_INDICES)
               if shares[c] >= recall_share and whole[c] >= recall_min_pixels}
    precision = len(present) / len(mentioned) if mentioned else np.nan
    recall = len(notable & mentioned) / len(notable) if notable else np.nan
    f1 = (2 * precision * recall / (precision + recall)
          if np.isfinite(precision) and np.isfinite(recall) and precision + recall > 0 else
          (0.0 if np.isfinite(precision) and np.isfinite(recall) else np.nan))
    correct = total = 0
    for m in parsed.spatial_claims:
        regs = list(m.regions)
        total += 1
        if m.negated:
            correct += _union_share(counts, regs, m.cls) <= config.denial_share
        else:
            correct += counts[regs, m.cls].sum() >= config.min_pixels
    spatial = correct / total if total else np.nan
    ok = n_prop = 0
    for p in parsed.proportions:
        regs = list(p.regions)
        share = _union_share(counts, regs, p.cls)
        n_prop += 1
        if p.word == "dominant":
            top = max(_union_share(counts, regs, c) for c in range(1, landcover.N_INDICES))
            ok += share >= config.dominance_share or share >= top - config.dominance_margin
        else:
            ok += p.low - config.tolerance <= share <= p.high + config.tolerance
    proportion = ok / n_prop if n_prop else np.nan
    parts = [v for v in (precision, recall, spatial, proportion) if np.isfinite(v)]
    return {
        "precision": precision, "recall": recall, "f1": f1, "spatial_accuracy": spatial,
        "proportion_accuracy": proportion, "score": float(np.mean(parts)) if parts else np.nan,
        "n_mentioned": len(mentioned), "n_hallucinated": len(mentioned - present),
        "n_omitted": len(notable - mentioned), "n_spatial_claims": total, "n_proportion_claims": n_prop,
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
