"""The benchmark table: rows measured here beside the rows the ChatEarthNet paper reports.

Measured rows come from :func:`score_run` (a :class:`cen.baselines.SystemRun` scored with
:func:`cen.metrics.evaluate`, bootstrap intervals and the label-consistency score of
:mod:`cen.verify`). Reported rows are the paper's Table 2 (``data/paper_table2.csv``, cited
constants with their source): they are kept in their own rows with ``kind = "reported"``, carry no
intervals and no consistency, and are never averaged or merged with measured numbers (they were
computed on the ChatEarthNet GPT-4V test set, not on the data scored here).

For notebook 07: :func:`paired_tests` against the constant baseline, :func:`plot_per_image`
(score distributions), :func:`plot_best_and_worst` (label maps of the best and worst captions)
and :func:`summary` (the numbers it records).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from cen import metrics, paths

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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


def score_runs(runs: Sequence[Any], data: Any, *, metric_names: Sequence[str] | None = None, resamples: int = 1000,
               seed: int = 0) -> list[ScoredRun]:
    """:func:`score_run` of every run on ``data``'s test references (a
    :class:`cen.baselines.BenchmarkData`), with label consistency when it has region counts."""
    return [score_run(r, data.test_references, counts=data.counts or None, metric_names=metric_names,
                      resamples=resamples, seed=seed) for r in runs]


def not_computed(scored: Sequence[ScoredRun]) -> dict[str, str]:
    """Metric -> reason, for every metric some run could not compute (e.g. SPICE without CoreNLP)."""
    return {k: v for s in scored for k, v in s.evaluation.not_computed.items()}


def paired_tests(scored: Sequence[ScoredRun], baseline: str = "constant", *, resamples: int = 1000, seed: int = 0,
                 min_images: int = 5) -> dict[str, pd.DataFrame]:
    """:func:`cen.metrics.paired_test` of every other run against the run of system ``baseline``
    (system -> table per metric). Empty without that run or with fewer than ``min_images`` images,
    where a paired bootstrap says nothing."""
    floor = next((s for s in scored if s.run.system == baseline), None)
    if floor is None or len(floor.evaluation.per_image) < min_images:
        return {}
    return {s.run.system: metrics.paired_test(s.evaluation, floor.evaluation, resamples=resamples, seed=seed)
            for s in scored if s is not floor}


def plot_per_image(scored: Sequence[ScoredRun]) -> Figure | None:
    """Box plots of the per-image scores, one panel per metric, one box per system
    (:func:`per_image_long`); ``None`` when no run has per-image scores."""
    import seaborn as sns

    long = per_image_long(scored)
    if not len(long):
        return None
    grid = sns.catplot(data=long, x="score", y="system", col="metric", col_wrap=4, kind="box", sharex=False,
                       height=2.4, aspect=1.3)
    grid.set_titles("{col_name}")
    return grid.figure


SHOWCASE_METRICS = ("CIDEr", "ROUGE_L", "METEOR")
"""Metrics whose best and worst captions notebook 07 shows."""


def showcase(scored: Sequence[ScoredRun]) -> tuple[ScoredRun | None, list[str]]:
    """The run to show captions of (the first that is not an oracle, else the first) and which of
    :data:`SHOWCASE_METRICS` it has per-image scores for; ``(None, [])`` without runs."""
    show = next((s for s in scored if not s.run.oracle), scored[0] if scored else None)
    if show is None:
        return None, []
    return show, [m for m in SHOWCASE_METRICS if m in show.evaluation.per_image]


def plot_best_and_worst(picks: pd.DataFrame, label_paths: dict[str, str], metric: str, title: str = "") -> Figure:
    """The label maps of :func:`best_and_worst` picks, one panel per pick titled with its rank and
    score (an empty panel for an image without a label GeoTIFF), with the classes' legend."""
    import matplotlib.pyplot as plt

    from cen.verify import label_map_rgb, plot_label_map

    tiles = pd.DataFrame({"tile_id": list(label_paths), "label_path": list(label_paths.values())})
    fig, axes = plt.subplots(1, len(picks), figsize=(4.6 * max(len(picks), 1), 3.2), squeeze=False)
    for ax, (_, row) in zip(axes[0], picks.iterrows()):
        panel = f"{row['rank']} {metric} {row[metric]:.3f}"
        if row["image_id"] in label_paths:
            plot_label_map(label_map_rgb(tiles, row["image_id"], source="label paths"), ax=ax, title=panel)
        else:
            ax.set_title(panel, fontsize=9)
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def scores_table(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """:func:`benchmark_table` cut to ``kind``, ``system``, ``n_images``, the metrics and label
    consistency, rounded: measured rows beside the paper's reported ones."""
    cols = ["kind", "system", "n_images", *TABLE_METRICS, "label_consistency"]
    return table[cols].round(digits)


def summary(scored: Sequence[ScoredRun], n_test: int, paired: dict[str, pd.DataFrame] | None = None) -> dict[str, Any]:
    """The numbers notebook 07 records for runs on ``n_test`` test images: per system ``scores`` (6 digits),
    ``label_consistency`` (mean, 4 digits, ``None`` without counts), ``intervals`` and ``paired``
    (as lists of records), ``rank_by`` (CIDEr, or ROUGE-L when CIDEr-D is 0 by construction: one
    test image, or CIDEr missing), ``best`` (the system ranked first, ``None`` without runs) and
    ``text``, a one-line summary."""
    scores = {s.run.system: {k: round(float(v), 6) for k, v in s.evaluation.scores.items()} for s in scored}
    consistency = {s.run.system: (round(float(s.consistency["score"].mean()), 4) if s.consistency is not None else None)
                   for s in scored}
    # CIDEr-D is 0 by construction with a single test image (every n-gram has idf 0), so rank by ROUGE-L then
    rank_by = "CIDEr" if n_test > 1 and scores and all("CIDEr" in v for v in scores.values()) else "ROUGE_L"
    best = max(scores, key=lambda k: scores[k].get(rank_by, float("-inf"))) if scores else None
    missing = not_computed(scored)
    text = (f"{len(scored)} systems on {n_test} test tiles; best {rank_by}: {best} "
            f"({scores[best].get(rank_by, float('nan')):.3f}); SPICE " + ("computed" if "SPICE" not in missing
            else "not computed (CoreNLP jars absent)") if best else "no system ran")
    return {
        "scores": scores, "label_consistency": consistency, "rank_by": rank_by, "best": best, "text": text,
        "intervals": {s.run.system: s.intervals.reset_index().to_dict(orient="records")
                      for s in scored if s.intervals is not None},
        "paired": {k: t.reset_index().to_dict(orient="records") for k, t in (paired or {}).items()},
    }
