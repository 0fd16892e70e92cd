"""Tables and figures of a questions table for notebook 09 (figures are returned, not shown)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from cen.vqa.build import TASKS, answer_values

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def task_counts(questions: pd.DataFrame) -> pd.DataFrame:
    """Questions per task and format, with the tiles they are about and the templates used."""
    g = questions.groupby(["task", "format"], sort=False)
    out = pd.DataFrame({"questions": g.size(), "tiles": g["tile_id"].nunique(), "templates": g["template_id"].nunique()})
    out = out.reset_index()
    order = {t: i for i, t in enumerate(TASKS)}
    return out.sort_values("task", key=lambda s: s.map(order), ignore_index=True)


def correct_positions(questions: pd.DataFrame) -> pd.Series:
    """Index (0 = A) of the correct choice of each multiple-choice question (NaN for the others)."""
    pos = [list(c).index(a) if f == "multiple_choice" else np.nan
           for a, c, f in zip(questions["answer"], questions["choices"], questions["format"])]
    return pd.Series(pos, index=questions.index, dtype=float)


def balance_table(questions: pd.DataFrame) -> pd.DataFrame:
    """Per task: questions, share of "yes" (yes/no tasks), the largest share of correct answers
    held by one choice position (multiple choice), distinct answers and the most common answer's share."""
    pos = correct_positions(questions)
    rows = []
    for task, g in questions.groupby("task", sort=False):
        fmt = g["format"].iloc[0]
        p = pos[g.index].dropna().astype(int)
        counts = g["answer"].value_counts()
        rows.append({
            "task": task, "format": fmt, "questions": len(g),
            "yes_share": float((g["answer"] == "yes").mean()) if fmt == "yes_no" else np.nan,
            "top_position_share": float(np.bincount(p).max() / len(p)) if len(p) else np.nan,
            "answers": int(len(counts)), "top_answer": str(counts.index[0]),
            "top_answer_share": float(counts.iloc[0] / len(g)),
        })
    order = {t: i for i, t in enumerate(TASKS)}
    return pd.DataFrame(rows).sort_values("task", key=lambda s: s.map(order), ignore_index=True)


def examples(questions: pd.DataFrame, per_task: int = 1, seed: int = 0) -> pd.DataFrame:
    """``per_task`` random questions of every task (columns as in the table)."""
    parts = [g.sample(min(per_task, len(g)), random_state=seed) for _, g in questions.groupby("task", sort=False)]
    order = {t: i for i, t in enumerate(TASKS)}
    out = pd.concat(parts) if parts else questions.head(0)
    return out.sort_values("task", key=lambda s: s.map(order), kind="stable")


def plot_examples(questions: pd.DataFrame, workdir: str | Path, *, per_task: int = 1, seed: int = 0,
                  tasks: Sequence[str] | None = None) -> "Figure":
    """One panel per example question: the tile's label map in the ChatEarthNet colours, the
    region asked about outlined, the answer box drawn for ``referring``; question and answer as
    the title."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from cen.landcover import indices_to_colour, region_boxes
    from cen.stats import read_label_map
    from cen.tables import read_table, resolve_path

    workdir = Path(workdir)
    shown = examples(questions if tasks is None else questions[questions["task"].isin(tasks)], per_task, seed)
    tiles = read_table(workdir / "tiles.parquet", ("tile_id", "label_path"), what="tiles table",
                       made_by="notebook 01 / `cen tiles`")
    paths = dict(zip(tiles["tile_id"].astype(str), tiles["label_path"]))
    n = max(len(shown), 1)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 5.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    values = answer_values(shown)
    for ax, row, value in zip(axes.ravel(), shown.to_dict("records"), values):
        path = resolve_path(paths.get(str(row["tile_id"])), workdir)
        if path is not None:
            labels = read_label_map(path)
            ax.imshow(indices_to_colour(labels), interpolation="nearest")
            h, w = labels.shape
            if row["region"] != "whole":
                r0, r1, c0, c1 = region_boxes(h, w)[row["region"].replace("_", " ")]
                ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False, ec="black", lw=2, ls="--"))
            if row["format"] == "bbox":
                x0, y0, x1, y1 = value
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="magenta", lw=2))
        title = textwrap.fill(row["question"].replace("\nOptions: ", " | "), 48)
        ax.set_title(f"[{row['task']}]\n{title}\nanswer: {row['answer']}", fontsize=8, loc="left")
    fig.tight_layout()
    return fig


ABLATION_PROBES: dict[str, tuple[str, ...]] = {
    "full": (),
    "no_size": ("area", "dominant"),
    "no_position": ("presence", "relative_position", "referring"),
    "classes_only": ("area", "dominant", "presence", "relative_position", "referring", "adjacency", "counting"),
}
"""Caption variant -> the question tasks whose answers depend on what the variant leaves out
(proportion words: area and dominant; region sentences: regional presence, relative position,
boxes; everything but the class list: all label tasks)."""


def ablation_sets(workdir: str | Path, questions: pd.DataFrame | None = None) -> pd.DataFrame:
    """The caption variant sets (``captions_<variant>.parquet``) in a workdir: variant, file, rows,
    and with ``questions`` the tasks that probe what the variant removes and how many such
    questions the table has on the variant's tiles."""
    import pyarrow.parquet as pq

    rows = []
    for path in sorted(Path(workdir).glob("captions_*.parquet")):
        variant = path.stem[len("captions_"):]
        if variant in ("verified",) or variant.endswith("_failures") or not variant:
            continue
        rec = {"variant": variant, "file": path.name, "rows": pq.ParquetFile(path).metadata.num_rows,
               "probed_by": ", ".join(ABLATION_PROBES.get(variant, ())), "questions": np.nan}
        if questions is not None:
            tiles = set(pd.read_parquet(path, columns=["tile_id"])["tile_id"].astype(str))
            probes = ABLATION_PROBES.get(variant, ())
            sel = questions["task"].isin(probes) & questions["tile_id"].astype(str).isin(tiles)
            if variant == "no_position":
                sel &= (questions["region"] != "whole") | (questions["task"] != "presence")
            rec["questions"] = int(sel.sum())
        rows.append(rec)
    return pd.DataFrame(rows, columns=["variant", "file", "rows", "probed_by", "questions"])
