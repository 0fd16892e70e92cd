"""Scoring answers to ``vqa.parquet``: documented normalisation, accuracy with bootstrap intervals.

:func:`evaluate` takes the questions table and predictions (``qid`` -> answer text, or a
value) and returns an :class:`Evaluation`: per task and format the number of questions, the
accuracy and its percentile-bootstrap interval (resampling questions, with
:func:`cen.metrics.bootstrap_weights`), how many predictions could not be read, and for boxes
the accuracy at IoU >= 0.5 and the mean IoU. A question without a prediction counts as wrong.

Normalisation (:func:`normalise`), per format:

* ``yes_no``: case and punctuation ignored; ``yes``/``y``/``true`` or ``no``/``n``/``false`` at
  the start, else the only one of ``yes``/``no`` that occurs as a word; a bool as itself.
* ``multiple_choice``: a choice letter alone or followed by ``.``, ``)`` or ``:`` (``B``,
  ``(b)``, ``B. tree``), or after "answer", "option" or "choice" (``The answer is C``); else a choice's text (case and spacing ignored; for the area bins the
  size word alone, ``medium``, also counts); else the one choice text found in the answer (one
  found inside another, ``small`` in ``extra small``, yields to it);
  for ``area``, else a number: a percent (``37 %``, ``37``) or a fraction (``0.37``), rounded half
  up to a whole percent, picks the bin it falls in.
* ``open`` (integers): the first integer in the text, or a number word ``zero`` ... ``twenty``.
* ``bbox``: GeoChat's ``{<x0><y0><x1><y1>}`` (0-100, scaled to the tile's size) or four numbers
  ``[x0, y0, x1, y1]`` in pixels; correct when its IoU with the answer box is at least 0.5.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

IOU_THRESHOLD = 0.5
DEFAULT_SIZE = (256, 256)
"""(height, width) of a tile when :func:`evaluate` is not told otherwise (ChatEarthNet's 256 x 256)."""

_WORD = re.compile(r"[a-z]+")
_YES = {"yes", "y", "true"}
_NO = {"no", "n", "false"}
_LETTER = re.compile(r"^\W*\(?([A-Za-z])\)?\s*(?:[.):]|$)")
_ANSWER_LETTER = re.compile(r"\b(?i:answer|option|choice)\s*(?:is|:)?\s*\(?([A-Z])\)?(?![\w-])")
_INT = re.compile(r"(?<![\d.])-?\d+(?![\d.])")
_NUMBER = re.compile(r"(\d+(?:\.\d+)?)\s*(%|per\s*cent|percent)?", re.IGNORECASE)
_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_GEOCHAT = re.compile(r"\{\s*<\s*(-?\d+(?:\.\d+)?)\s*>\s*<\s*(-?\d+(?:\.\d+)?)\s*>\s*<\s*(-?\d+(?:\.\d+)?)\s*>\s*"
                      r"<\s*(-?\d+(?:\.\d+)?)\s*>\s*\}")
_FOUR = re.compile(r"(-?\d+(?:\.\d+)?)\D+?(-?\d+(?:\.\d+)?)\D+?(-?\d+(?:\.\d+)?)\D+?(-?\d+(?:\.\d+)?)")


def _text(prediction: Any) -> str | None:
    if prediction is None or (isinstance(prediction, float) and np.isnan(prediction)):
        return None
    return str(prediction)


def _simple(text: str) -> str:
    return " ".join(re.sub(r"[^\w%\-\s]", " ", text.lower()).split())


def parse_yes_no(prediction: Any) -> bool | None:
    """True / False / None (unreadable) of a yes/no answer."""
    if isinstance(prediction, (bool, np.bool_)):
        return bool(prediction)
    text = _text(prediction)
    if text is None:
        return None
    words = _WORD.findall(text.lower())
    if not words:
        return None
    if words[0] in _YES:
        return True
    if words[0] in _NO:
        return False
    found = {w for w in words if w in ("yes", "no")}
    return (found == {"yes"}) if len(found) == 1 else None


def _percent_of(text: str) -> int | None:
    m = _NUMBER.search(text)
    if not m:
        return None
    value = float(m.group(1))
    if not m.group(2) and value <= 1 and "." in m.group(1):
        value *= 100
    return int(np.floor(value + 0.5))


def parse_choice(prediction: Any, choices: list[str], task: str = "") -> int | None:
    """Index of the chosen option (see the module docstring), or None."""
    text = _text(prediction)
    if text is None or not len(choices):
        return None
    m = _LETTER.match(text) or _ANSWER_LETTER.search(text)
    if m:
        k = ord(m.group(1).upper()) - ord("A")
        if 0 <= k < len(choices):
            return k
    simple = _simple(text)
    names = [_simple(c) for c in choices]
    heads = [_simple(c.split(" (")[0]) for c in choices]
    for pool in (names, heads):
        if simple in pool and pool.count(simple) == 1:
            return pool.index(simple)
    found = [(len(n), i) for i, n in enumerate(names) if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", simple)]
    if not found:
        found = [(len(n), i) for i, n in enumerate(heads) if re.search(rf"(?<![\w-]){re.escape(n)}(?!\w)", simple)]
    pool = names if any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", simple) for n in names) else heads
    kept = [i for _, i in found if not any(j != i and pool[i] in pool[j] for _, j in found)]
    if len(kept) == 1:
        return kept[0]
    if task == "area":
        from cen.vqa.area import BIN_LABELS, bin_of_percent

        pct = _percent_of(text)
        if pct is not None and 0 <= pct <= 100:
            label = BIN_LABELS[int(bin_of_percent(pct))]
            if label in choices:
                return choices.index(label)
    return None


def parse_int(prediction: Any) -> int | None:
    """The first integer (or number word up to twenty) of an answer, or None."""
    if isinstance(prediction, (int, np.integer)) and not isinstance(prediction, bool):
        return int(prediction)
    text = _text(prediction)
    if text is None:
        return None
    m = _INT.search(text)
    if m:
        return int(m.group(0))
    for w in _WORD.findall(text.lower()):
        if w in _NUMBER_WORDS:
            return _NUMBER_WORDS[w]
    return None


def parse_box(prediction: Any, size: tuple[int, int] = DEFAULT_SIZE) -> list[float] | None:
    """``[x0, y0, x1, y1]`` in pixels from GeoChat's 0-100 form or four pixel numbers, or None."""
    h, w = size
    if isinstance(prediction, (list, tuple, np.ndarray)) and len(prediction) == 4:
        return [float(v) for v in prediction]
    text = _text(prediction)
    if text is None:
        return None
    m = _GEOCHAT.search(text)
    if m:
        x0, y0, x1, y1 = (float(v) for v in m.groups())
        return [x0 * w / 100, y0 * h / 100, x1 * w / 100, y1 * h / 100]
    m = _FOUR.search(text)
    if m:
        return [float(v) for v in m.groups()]
    return None


def iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two ``[x0, y0, x1, y1]`` boxes (ends exclusive; corners in any order)."""
    ax0, ax1 = sorted((a[0], a[2]))
    ay0, ay1 = sorted((a[1], a[3]))
    bx0, bx1 = sorted((b[0], b[2]))
    by0, by1 = sorted((b[1], b[3]))
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return float(inter / union) if union > 0 else 0.0


def normalise(prediction: Any, row: Mapping[str, Any], size: tuple[int, int] = DEFAULT_SIZE) -> Any:
    """The prediction in the form of ``row``'s ``answer_value``: bool, choice index, int or box (None if unreadable)."""
    fmt = row["format"]
    if fmt == "yes_no":
        return parse_yes_no(prediction)
    if fmt == "multiple_choice":
        return parse_choice(prediction, list(row["choices"]), str(row.get("task", "")))
    if fmt == "open":
        return parse_int(prediction)
    if fmt == "bbox":
        return parse_box(prediction, size)
    raise ValueError(f"question {row.get('qid')!r}: unknown format {fmt!r}")


def score_one(prediction: Any, row: Mapping[str, Any], size: tuple[int, int] = DEFAULT_SIZE) -> tuple[bool, bool, float]:
    """``(readable, correct, iou)`` of one prediction (``iou`` NaN except for boxes)."""
    value = json.loads(row["answer_value"])
    parsed = normalise(prediction, row, size)
    if parsed is None:
        return False, False, (0.0 if row["format"] == "bbox" else float("nan"))
    fmt = row["format"]
    if fmt == "bbox":
        overlap = iou(parsed, value)
        return True, overlap >= IOU_THRESHOLD, overlap
    if fmt == "multiple_choice":
        return True, list(row["choices"])[parsed] == row["answer"], float("nan")
    return True, parsed == value, float("nan")


@dataclass
class Evaluation:
    """Scores of one set of predictions."""

    table: pd.DataFrame
    """Per ``task`` x ``format`` and ``all``: ``n``, ``answered``, ``unreadable``, ``accuracy``,
    ``low``, ``high`` (bootstrap interval), ``mean_iou``, ``iou_low``, ``iou_high`` (boxes)."""
    per_question: pd.DataFrame
    """``qid``, ``task``, ``format``, ``answered``, ``readable``, ``correct``, ``iou``."""
    n_missing: int

    def accuracy(self, task: str = "all") -> float:
        """Accuracy of one task (``all``: every question)."""
        rows = self.table[self.table["task"] == task]
        if rows.empty:
            raise KeyError(f"no task {task!r} in this evaluation")
        return float((rows["accuracy"] * rows["n"]).sum() / rows["n"].sum())

    def summary(self) -> str:
        overall = self.table[self.table["task"] == "all"].iloc[0]
        return (f"{int(overall['n'])} questions, accuracy {overall['accuracy']:.3f} "
                f"[{overall['low']:.3f}, {overall['high']:.3f}]; {self.n_missing} without a prediction, "
                f"{int(overall['unreadable'])} unreadable")


def _interval(values: np.ndarray, resamples: int, seed: int, level: float) -> tuple[float, float]:
    from cen.metrics import bootstrap_weights

    n = len(values)
    if n == 0 or resamples <= 0:
        return float("nan"), float("nan")
    means = bootstrap_weights(n, resamples, seed) @ values / n
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def _as_mapping(predictions: Any) -> dict[str, Any]:
    if isinstance(predictions, pd.DataFrame):
        col = "prediction" if "prediction" in predictions else None
        if "qid" not in predictions or col is None:
            raise KeyError(f"predictions need columns 'qid' and 'prediction' (got {', '.join(map(str, predictions.columns))})")
        qids = predictions["qid"].astype(str)
        if qids.duplicated().any():
            raise ValueError(f"predictions: qid {qids[qids.duplicated()].iloc[0]!r} has more than one prediction")
        return dict(zip(qids, predictions[col]))
    if isinstance(predictions, pd.Series):
        return {str(k): v for k, v in predictions.items()}
    return {str(k): v for k, v in dict(predictions).items()}


def evaluate(questions: pd.DataFrame, predictions: Any, *, sizes: Mapping[str, tuple[int, int]] | None = None,
             resamples: int = 1000, seed: int = 0, level: float = 0.95) -> Evaluation:
    """Score ``predictions`` (DataFrame ``qid``/``prediction``, Series or mapping by qid) on ``questions``.

    ``sizes``: ``{tile_id: (height, width)}`` for GeoChat boxes of tiles not 256 x 256.
    """
    preds = _as_mapping(predictions)
    unknown = sorted(set(preds) - set(questions["qid"].astype(str)))
    if unknown:
        raise KeyError(f"predictions: {len(unknown)} qids are not questions of this table, e.g. {unknown[0]!r}")
    rows = []
    for row in questions.to_dict("records"):
        qid = str(row["qid"])
        size = (sizes or {}).get(str(row["tile_id"]), DEFAULT_SIZE)
        answered = qid in preds
        readable, correct, overlap = score_one(preds[qid], row, size) if answered else (False, False, np.nan)
        if not answered and row["format"] == "bbox":
            overlap = 0.0
        rows.append((qid, row["task"], row["format"], answered, readable, correct, overlap))
    per_q = pd.DataFrame(rows, columns=["qid", "task", "format", "answered", "readable", "correct", "iou"])
    out = []
    groups = [((t, f), g) for (t, f), g in per_q.groupby(["task", "format"], sort=False)] + [(("all", "all"), per_q)]
    for k, ((task, fmt), g) in enumerate(groups):
        correct = g["correct"].to_numpy(float)
        lo, hi = _interval(correct, resamples, seed + k, level)
        rec = {"task": task, "format": fmt, "n": len(g), "answered": int(g["answered"].sum()),
               "unreadable": int((g["answered"] & ~g["readable"]).sum()),
               "accuracy": float(correct.mean()) if len(g) else float("nan"), "low": lo, "high": hi,
               "mean_iou": float("nan"), "iou_low": float("nan"), "iou_high": float("nan")}
        if fmt == "bbox":
            ious = g["iou"].to_numpy(float)
            rec["mean_iou"] = float(ious.mean())
            rec["iou_low"], rec["iou_high"] = _interval(ious, resamples, seed + k + 1000, level)
        out.append(rec)
    table = pd.DataFrame(out)
    table.attrs.update(resamples=resamples, seed=seed, level=level, method="percentile bootstrap over questions")
    return Evaluation(table, per_q, int((~per_q["answered"]).sum()))


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Predictions from Parquet, CSV or JSON lines with columns ``qid`` and ``prediction``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: predictions file not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif suffix == ".csv":
        frame = pd.read_csv(path, dtype={"qid": str, "prediction": str}, keep_default_na=False)
    elif suffix in (".jsonl", ".json"):
        frame = pd.read_json(path, lines=suffix == ".jsonl", dtype={"qid": str})
    else:
        raise ValueError(f"{path}: predictions must be .parquet, .csv or .jsonl")
    for col in ("qid", "prediction"):
        if col not in frame:
            raise KeyError(f"{path}: missing column {col!r} (columns: {', '.join(map(str, frame.columns))})")
    return frame
