"""The benchmark tables: rows measured here, and apart from them the rows the ChatEarthNet paper reports.

Measured rows come from :func:`score_run` (a :class:`cen.baselines.SystemRun` scored with
:func:`cen.metrics.evaluate`, bootstrap intervals and the label-consistency score of
:mod:`cen.verify`); :func:`measured_table` shows them for reading, with the test set they were
scored on (images, who wrote the references, how many). Reported rows are the paper's Table 2
(``data/paper_table2.csv``, cited constants with their source); :func:`reported_table` shows
them with *their* test set (the release's GPT-4V test split). The two are never put in one
table, ranked together, averaged or merged: they were scored on different images against
different references.

For notebook 07: :func:`paired_tests` against the constant baseline and :func:`paired_table`
(p-values as "< 0.001"), :func:`plot_per_image` (score distributions), :func:`showcase` (the
system whose best and worst captions are shown: the best one that is neither an oracle nor the
constant caption, when one ran), :func:`plot_best_and_worst` (label maps of those captions),
:func:`reference_note` (why n-gram scores on template references are inflated) and
:func:`summary` (the numbers it records).
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
PAPER_TEST_SET = {
    "test set": "ChatEarthNet (ChatGPT-4V version) test split",
    "images": 3000,
    "reference source": "ChatGPT-4V (the release's captions)",
    "references": 3000,
}
"""The test set of the paper's Table 2: the release's ``caps_4v_test`` split, one ChatGPT-4V caption
per image (3,000 images, counted by third parties who downloaded the release)."""
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


def benchmark_table(scored: Sequence[ScoredRun]) -> pd.DataFrame:
    """The measured rows (in the given order), numeric: one column per metric, ``<metric>_low`` /
    ``_high`` interval columns, ``label_consistency``, ``not_computed``, ``source``. The paper's
    rows are :func:`paper_rows`, a table of their own."""
    return pd.DataFrame([s.row() for s in scored]) if scored else pd.DataFrame(columns=ID_COLUMNS + TABLE_METRICS)


def format_score(value: float, low: float = np.nan, high: float = np.nan, digits: int = 3) -> str:
    """``0.123`` or ``0.123 [0.101, 0.145]``; empty for a missing value."""
    if value is None or pd.isna(value):
        return ""
    text = f"{value:.{digits}f}"
    return text + (f" [{low:.{digits}f}, {high:.{digits}f}]" if pd.notna(low) and pd.notna(high) else "")


def format_p(p: float) -> str:
    """A p-value for reading: ``< 0.001`` below one in a thousand, else three decimals."""
    if p is None or pd.isna(p):
        return ""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def evaluation_set(data: Any) -> dict[str, Any]:
    """What the measured rows were scored on (a :class:`cen.baselines.BenchmarkData`): test set,
    number of images, who wrote the references, number of references."""
    src = Path(str(data.source))
    where = f"{src.parent.name}/{src.name}" if src.parent.name else str(data.source)
    return {"test set": f"{data.split} split" + (f" of {where}" if where else ""), "images": len(data.test),
            "reference source": data.reference_source or "unknown", "references": data.n_test_references}


def describe_test_set(info: dict[str, Any]) -> str:
    """One sentence naming a test set (:func:`evaluation_set` or :data:`PAPER_TEST_SET`)."""
    return (f"Test set: {info['test set']}, {info['images']:,} images, {info['references']:,} reference captions "
            f"by {info['reference source']}.")


def measured_table(scored: Sequence[ScoredRun], data: Any, *, digits: int = 3) -> pd.DataFrame:
    """The measured rows for reading: system, oracle, images, the metrics as ``score [low, high]``
    (``n/c``: not computed, the reason is in :func:`not_computed`), label consistency, and the
    test set they were scored on (:func:`evaluation_set`). Ranked by nothing: rows in run order."""
    info = evaluation_set(data)
    rows = []
    for s in scored:
        r = s.row()
        row: dict[str, Any] = {"system": r["system"], "oracle": "yes" if r["oracle"] else "no", "images": r["n_images"]}
        for key in TABLE_METRICS:
            row[key] = format_score(r[key], r[f"{key}_low"], r[f"{key}_high"], digits) or "n/c"
        row["label consistency"] = format_score(r["label_consistency"], digits=digits)
        row["test set"] = info["test set"]
        row["references"] = f"{info['references']:,} by {info['reference source']}"
        rows.append(row)
    return pd.DataFrame(rows)


def reported_table(path: Path = PAPER_TABLE, *, digits: int = 3) -> pd.DataFrame:
    """The paper's Table 2 for reading, in the paper's order: model, setting, the metrics (three
    decimals), its test set (:data:`PAPER_TEST_SET`) and the source of the numbers."""
    rows = paper_rows(path)
    out = pd.DataFrame({"model": rows["system"], "setting": rows["model"]})
    for key in TABLE_METRICS:
        out[key] = [format_score(v, digits=digits) for v in rows[key]]
    out["test set"] = PAPER_TEST_SET["test set"]
    out["references"] = f"{PAPER_TEST_SET['references']:,} by {PAPER_TEST_SET['reference source']}"
    out["source"] = rows["source"]
    return out


def display_table(table: pd.DataFrame, *, digits: int = 3) -> pd.DataFrame:
    """A numeric table of :func:`benchmark_table` or :func:`paper_rows` for reading:
    ``score [low, high]`` per metric (``n/c`` when a measured metric was not computed)."""
    out = pd.DataFrame({"system": table["system"], "kind": table["kind"], "model": table["model"],
                        "n": table["n_images"]})
    for key in TABLE_METRICS:
        out[key] = [format_score(r[key], r[f"{key}_low"], r[f"{key}_high"], digits)
                    or ("n/c" if r["kind"] == "measured" else "") for _, r in table.iterrows()]
    out["label consistency"] = [format_score(v, digits=digits) for v in table["label_consistency"]]
    return out


def paired_table(paired: dict[str, pd.DataFrame], baseline: str = "constant", *, digits: int = 3) -> pd.DataFrame:
    """:func:`paired_tests` for reading: one row per system and metric, the two scores, their
    difference with its 95 % interval, and the p-value (``< 0.001`` below one in a thousand)."""
    rows = []
    for system, t in paired.items():
        for metric, r in t.iterrows():
            rows.append({"system": system, "metric": metric, "score": format_score(r["a"], digits=digits),
                         baseline: format_score(r["b"], digits=digits),
                         "difference [95 % interval]": format_score(r["diff"], r["low"], r["high"], digits),
                         "p": format_p(r["p_value"])})
    return pd.DataFrame(rows, columns=["system", "metric", "score", baseline, "difference [95 % interval]", "p"])


def reference_note(data: Any, scored: Sequence[ScoredRun] = ()) -> str:
    """One sentence for above the measured table: why n-gram scores on template references are
    inflated and what label consistency adds (empty when the references are not the template's)."""
    if not data.references_from_template:
        return ""
    text = ("The references here were written by cen's template captioner from the same label statistics, so any "
            "system that reuses its sentence frames (the template oracle, and retrieval of another tile's template "
            "caption) shares long n-grams with them: BLEU, METEOR, ROUGE-L and CIDEr then measure closeness to the "
            "template's wording, not correctness, and cannot be compared with the paper's scores on GPT-4V captions; "
            "the label-consistency column instead checks each caption's class, region and proportion claims against "
            "the tile's labels (1 = every claim true)")
    ex = [s for s in scored if s.consistency is not None and "Bleu_1" in s.evaluation.scores]
    if ex:
        s = min(ex, key=lambda s: float(s.consistency["score"].mean()))
        text += (f", which n-gram scores cannot see: {s.run.system} reaches BLEU-1 {s.evaluation.scores['Bleu_1']:.3f} "
                 f"with label consistency {float(s.consistency['score'].mean()):.3f}")
    return text + "."


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


def showcase(scored: Sequence[ScoredRun], rank_by: str = "CIDEr") -> tuple[ScoredRun | None, list[str]]:
    """The run whose best and worst captions to show and which of :data:`SHOWCASE_METRICS` it has
    per-image scores for: the best run by ``rank_by`` that is neither an oracle nor the constant
    caption (one text for every image says nothing per image); without one, the best oracle that
    is not the constant caption; the constant caption only when it ran alone. ``(None, [])``
    without runs."""
    if not scored:
        return None, []

    def score(s: ScoredRun) -> float:
        return float(s.evaluation.scores.get(rank_by, s.evaluation.scores.get("ROUGE_L", float("-inf"))))

    varied = [s for s in scored if s.run.system != "constant"]
    pool = [s for s in varied if not s.run.oracle] or varied or list(scored)
    show = max(pool, key=score)
    return show, [m for m in SHOWCASE_METRICS if m in show.evaluation.per_image]


def showcase_note(show: ScoredRun | None, scored: Sequence[ScoredRun]) -> str:
    """Why the examples come from ``show`` (one sentence)."""
    if show is None:
        return "No system ran."
    if not show.run.oracle and show.run.system != "constant":
        return f"Examples from {show.run.system}, the best system that reads neither the labels nor a constant caption."
    if show.run.oracle:
        return (f"Examples from {show.run.system}, an oracle that reads the labels: no system that sees only the "
                "image ran here (image features and a vision-language model need Sentinel-2 images and a model).")
    return "Only the constant caption ran: every image gets the same text."


def plot_best_and_worst(picks: pd.DataFrame, label_paths: dict[str, str], metric: str, title: str = "") -> Figure:
    """The label maps of :func:`best_and_worst` picks, one panel per pick titled with its rank,
    score and tile id (an empty panel for an image without a label GeoTIFF), with the classes' legend."""
    import matplotlib.pyplot as plt

    from cen.verify import label_map_rgb, plot_label_map

    tiles = pd.DataFrame({"tile_id": list(label_paths), "label_path": list(label_paths.values())})
    fig, axes = plt.subplots(1, len(picks), figsize=(4.6 * max(len(picks), 1), 3.2), squeeze=False)
    for ax, (_, row) in zip(axes[0], picks.iterrows()):
        panel = f"{row['rank']} {metric} {row[metric]:.3f}\n{row['image_id']}"
        if row["image_id"] in label_paths:
            plot_label_map(label_map_rgb(tiles, row["image_id"], source="label paths"), ax=ax, title=panel)
        else:
            ax.set_title(panel, fontsize=9)
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def rank_metric(scored: Sequence[ScoredRun], n_test: int) -> str:
    """CIDEr, or ROUGE-L when CIDEr-D is 0 by construction (a single test image: every n-gram has
    idf 0) or some run lacks it."""
    ok = n_test > 1 and scored and all("CIDEr" in s.evaluation.scores for s in scored)
    return "CIDEr" if ok else "ROUGE_L"


def summary(scored: Sequence[ScoredRun], n_test: int, paired: dict[str, pd.DataFrame] | None = None) -> dict[str, Any]:
    """The numbers notebook 07 records for runs on ``n_test`` test images: per system ``scores`` (6 digits),
    ``label_consistency`` (mean, 4 digits, ``None`` without counts), ``intervals`` and ``paired``
    (as lists of records), ``rank_by`` (CIDEr, or ROUGE-L when CIDEr-D is 0 by construction: one
    test image, or CIDEr missing), ``best`` (the system ranked first, ``None`` without runs) and
    ``text``, a one-line summary, ``showcase`` (the system :func:`showcase` picks)."""
    scores = {s.run.system: {k: round(float(v), 6) for k, v in s.evaluation.scores.items()} for s in scored}
    consistency = {s.run.system: (round(float(s.consistency["score"].mean()), 4) if s.consistency is not None else None)
                   for s in scored}
    rank_by = rank_metric(scored, n_test)
    best = max(scores, key=lambda k: scores[k].get(rank_by, float("-inf"))) if scores else None
    missing = not_computed(scored)
    text = (f"{len(scored)} systems on {n_test} test tiles; best {rank_by}: {best} "
            f"({scores[best].get(rank_by, float('nan')):.3f}); SPICE " + ("computed" if "SPICE" not in missing
            else "not computed (CoreNLP jars absent)") if best else "no system ran")
    return {
        "scores": scores, "label_consistency": consistency, "rank_by": rank_by, "best": best, "text": text,
        "showcase": (showcase(scored, rank_by)[0].run.system if scored else None),
        "intervals": {s.run.system: s.intervals.reset_index().to_dict(orient="records")
                      for s in scored if s.intervals is not None},
        "paired": {k: t.reset_index().to_dict(orient="records") for k, t in (paired or {}).items()},
    }
