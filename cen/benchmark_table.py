"""The benchmark table: rows measured here beside the rows the ChatEarthNet paper reports.

Measured rows come from :func:`score_run` (a :class:`cen.baselines.SystemRun` scored with
:func:`cen.metrics.evaluate`, bootstrap intervals and the label-consistency score of
:mod:`cen.verify`). Reported rows are the paper's Table 2 (``data/paper_table2.csv``, cited
constants with their source): they are kept in their own rows with ``kind = "reported"``, carry no
intervals and no consistency, and are never averaged or merged with measured numbers (they were
computed on the ChatEarthNet GPT-4V test set, not on the data scored here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from cen import metrics, paths

PAPER_TABLE = paths.DATA_DIR / "paper_table2.csv"
TABLE_METRICS = ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE"]
ID_COLUMNS = ["kind", "system", "model", "split", "n_images", "date", "prompt_hash", "oracle"]


@dataclass
class ScoredRun:
    """One system's evaluation: the run, the metrics result, its intervals and consistency scores."""

    run: Any  # cen.baselines.SystemRun
    evaluation: metrics.Evaluation
    intervals: pd.DataFrame | None
    consistency: pd.DataFrame | None

    def row(self) -> dict[str, Any]:
        rec = self.run.record()
        row: dict[str, Any] = {"kind": "measured", **{k: rec[k] for k in ID_COLUMNS[1:]}}
        for key in TABLE_METRICS:
            row[key] = self.evaluation.scores.get(key, np.nan)
            if self.intervals is not None and key in self.intervals.index:
                row[f"{key}_low"] = self.intervals.loc[key, "low"]
                row[f"{key}_high"] = self.intervals.loc[key, "high"]
            else:
                row[f"{key}_low"] = row[f"{key}_high"] = np.nan
        row["label_consistency"] = float(self.consistency["score"].mean()) if self.consistency is not None else np.nan
        row["not_computed"] = "; ".join(f"{k}: {v}" for k, v in self.evaluation.not_computed.items())
        row["source"] = self.run.notes
        return row


def score_run(run: Any, references: dict[str, list[str]], *, counts: dict[str, np.ndarray] | None = None,
              metric_names: Sequence[str] | None = None, resamples: int = 1000, seed: int = 0,
              **evaluate_kwargs: Any) -> ScoredRun:
    """Evaluate a :class:`cen.baselines.SystemRun` on ``references`` (test split), with intervals.

    ``counts`` (tile id -> (6, 12) region counts) adds the label-consistency score of every
    candidate (``cen.verify.score_table``); ``resamples = 0`` skips the bootstrap.
    """
    refs = {k: references[k] for k in references}
    ev = metrics.evaluate(refs, run.candidates, metric_names, **evaluate_kwargs)
    intervals = ev.bootstrap(resamples, seed=seed) if resamples else None
    consistency = None
    if counts is not None and all(k in counts for k in ev.ids):
        from cen.verify import score_table

        consistency = score_table([run.candidates[k] for k in ev.ids], np.stack([counts[k] for k in ev.ids]))
        consistency.index = pd.Index(ev.ids, name="image_id")
    return ScoredRun(run, ev, intervals, consistency)


def paper_rows(path: Path = PAPER_TABLE) -> pd.DataFrame:
    """The paper's Table 2 as reported rows (``kind = "reported"``)."""
    table = pd.read_csv(path)
    missing = [c for c in ["model", "source", *[k for k in TABLE_METRICS]] if c not in table.columns]
    if missing:
        raise KeyError(f"{path}: missing column {missing[0]!r}")
    rows = []
    for _, r in table.iterrows():
        row: dict[str, Any] = {"kind": "reported", "system": r["model"], "model": r["setting"],
                               "split": r["test_set"], "n_images": np.nan, "date": None, "prompt_hash": None,
                               "oracle": False}
        for key in TABLE_METRICS:
            row[key] = float(r[key])
            row[f"{key}_low"] = row[f"{key}_high"] = np.nan
        row["label_consistency"] = np.nan
        row["not_computed"] = ""
        row["source"] = r["source"]
        rows.append(row)
    return pd.DataFrame(rows)


def benchmark_table(scored: Sequence[ScoredRun], *, include_paper: bool = True) -> pd.DataFrame:
    """Measured rows (in the given order), then the paper's reported rows; one column per metric,
    ``<metric>_low``/``_high`` interval columns, ``label_consistency``, ``not_computed``, ``source``."""
    frames = [pd.DataFrame([s.row() for s in scored])] if scored else []
    if include_paper:
        frames.append(paper_rows())
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return table


def display_table(table: pd.DataFrame, *, digits: int = 3) -> pd.DataFrame:
    """Readable table: ``score [low, high]`` per metric, reported rows marked ``(reported)``,
    metrics not computed shown as ``n/c``."""
    out = pd.DataFrame({
        "system": [f"{s} (reported)" if k == "reported" else s
                   for s, k in zip(table["system"], table["kind"])],
        "kind": table["kind"], "model": table["model"], "n": table["n_images"],
    })
    for key in TABLE_METRICS:
        cells = []
        for _, r in table.iterrows():
            v = r[key]
            if pd.isna(v):
                cells.append("n/c" if r["kind"] == "measured" else "")
            elif pd.notna(r[f"{key}_low"]):
                cells.append(f"{v:.{digits}f} [{r[f'{key}_low']:.{digits}f}, {r[f'{key}_high']:.{digits}f}]")
            else:
                cells.append(f"{v:.{digits}f}")
        out[key] = cells
    out["label consistency"] = [f"{v:.{digits}f}" if pd.notna(v) else "" for v in table["label_consistency"]]
    return out


def per_image_long(scored: Sequence[ScoredRun]) -> pd.DataFrame:
    """Per-image scores of every run in long form: ``system``, ``image_id``, ``metric``, ``score``."""
    frames = []
    for s in scored:
        df = s.evaluation.per_image.reset_index().melt(id_vars="image_id", var_name="metric", value_name="score")
        df.insert(0, "system", s.run.system)
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["system", "image_id", "metric", "score"])


def best_and_worst(s: ScoredRun, references: dict[str, list[str]], metric: str, k: int = 1) -> pd.DataFrame:
    """The ``k`` best and ``k`` worst images of one run by one metric, with candidate and first reference."""
    col = s.evaluation.per_image[metric].sort_values(kind="stable")
    picks = [("worst", i) for i in col.index[:k]] + [("best", i) for i in col.index[::-1][:k]]
    return pd.DataFrame([{"rank": r, "image_id": i, metric: float(col[i]), "candidate": s.run.candidates[i],
                          "reference": references[i][0]} for r, i in picks])


def label_rgb(label_path: str | Path) -> np.ndarray:
    """``(H, W, 3)`` uint8 ChatEarthNet colours of a label GeoTIFF of WorldCover codes (for figures)."""
    from cen.landcover import indices_to_colour
    from cen.stats import read_label_map

    return indices_to_colour(read_label_map(label_path))
