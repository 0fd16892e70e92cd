"""Scoring: the normalisation cases, intervals, and the CLI on a predictions file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cen import vqa
from cen.cli import main
from cen.vqa import scoring

BINS = list(vqa.area.BIN_LABELS)


def q(fmt: str, answer: str, value, choices=None, task="t", qid="q1", tile="tile") -> dict:
    return {"qid": qid, "tile_id": tile, "task": task, "format": fmt, "answer": answer, "choices": choices,
            "answer_value": json.dumps(value)}


@pytest.mark.parametrize("text, want", [
    ("yes", True), ("Yes.", True), ("YES, there is water", True), ("y", True), ("True", True), (True, True),
    ("no", False), ("No, none.", False), ("false", False), (False, False),
    ("I think the answer is yes", True), ("maybe", None), ("maybe yes, maybe no", None), ("", None), (None, None),
])
def test_yes_no(text, want):
    assert scoring.parse_yes_no(text) == want


@pytest.mark.parametrize("text, want", [
    ("B", 1), ("b", 1), ("(C)", 2), ("C.", 2), ("D) wetland", 3), ("A. tree", 0), ("The answer is B.", 1),
    ("Option C", 2), ("water", 1), ("Water.", 1), ("  developed   area ", 2), ("It is mostly developed area.", 2),
    ("A tree", 0), ("E", None), ("forest", None), ("tree or water", None), (None, None),
])
def test_choices(text, want):
    choices = ["tree", "water", "developed area", "wetland"]
    assert scoring.parse_choice(text, choices) == want


@pytest.mark.parametrize("text, want", [
    ("medium", "medium (20-49 %)"), ("extra small", "extra small (0-9 %)"), ("small", "small (10-19 %)"),
    ("37%", "medium (20-49 %)"), ("37 percent", "medium (20-49 %)"), ("0.37", "medium (20-49 %)"),
    ("9.5 %", "small (10-19 %)"), ("80", "extra large (80-100 %)"), ("about 5 %", "extra small (0-9 %)"),
    ("large (50-79 %)", "large (50-79 %)"),
])
def test_area_numbers_within_the_bin(text, want):
    shuffled = [BINS[2], BINS[0], BINS[4], BINS[1], BINS[3]]
    k = scoring.parse_choice(text, shuffled, "area")
    assert k is not None and shuffled[k] == want


@pytest.mark.parametrize("text, want", [("3", 3), ("There are 12 patches.", 12), ("seven", 7), (4, 4), ("none", None),
                                        ("2.5", None)])
def test_integers(text, want):
    assert scoring.parse_int(text) == want


def test_boxes_and_iou():
    assert scoring.parse_box("{<10><20><50><60>}", (256, 256)) == [25.6, 51.2, 128.0, 153.6]
    assert scoring.parse_box("[10, 20, 50, 60]") == [10, 20, 50, 60]
    assert scoring.parse_box([1, 2, 3, 4]) == [1, 2, 3, 4]
    assert scoring.parse_box("somewhere left") is None
    assert scoring.iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert scoring.iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert scoring.iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    row = q("bbox", "{<0><0><50><50>}", [0, 0, 128, 128], task="referring")
    assert scoring.score_one("{<0><0><50><50>}", row)[1:] == (True, 1.0)
    assert scoring.score_one("{<0><0><40><40>}", row)[1] is True  # IoU 0.64
    assert scoring.score_one("{<0><0><30><30>}", row)[1] is False  # IoU 0.36


def test_evaluate_accuracy_intervals_and_missing():
    questions = pd.DataFrame([q("yes_no", "yes", True, task="presence", qid=f"p{i}") for i in range(40)]
                             + [q("multiple_choice", "water", "water", ["tree", "water"], task="dominant", qid="d0"),
                                q("open", "3", 3, task="counting", qid="c0")])
    preds = {f"p{i}": "yes" if i < 30 else "no" for i in range(40)} | {"d0": "B"}
    ev = scoring.evaluate(questions, preds, resamples=500)
    t = ev.table.set_index("task")
    assert t.loc["presence", "accuracy"] == 0.75 and t.loc["presence", "n"] == 40
    assert t.loc["presence", "low"] < 0.75 < t.loc["presence", "high"]
    assert t.loc["dominant", "accuracy"] == 1.0 and t.loc["counting", "accuracy"] == 0.0
    assert ev.n_missing == 1 and ev.accuracy("all") == pytest.approx(31 / 42)
    with pytest.raises(KeyError, match="not questions"):
        scoring.evaluate(questions, {"nope": "yes"})
    with pytest.raises(ValueError, match="more than one prediction"):
        scoring.evaluate(questions, pd.DataFrame({"qid": ["p0", "p0"], "prediction": ["yes", "no"]}))


def test_cli_evaluate(tmp_path, capsys):
    questions = pd.DataFrame([q("yes_no", "yes", True, task="presence", qid=f"p{i}") for i in range(4)])
    questions["question"] = "Is there water in the image?"
    for col in ("class_a", "class_b", "region", "template_id", "split"):
        questions[col] = None
    questions = questions[list(vqa.COLUMNS)]
    questions.to_parquet(tmp_path / "vqa.parquet")
    pd.DataFrame({"qid": ["p0", "p1", "p2", "p3"], "prediction": ["yes", "no", "Yes.", "y"]}).to_csv(
        tmp_path / "pred.csv", index=False)
    assert main(["vqa", "evaluate", str(tmp_path / "vqa.parquet"), str(tmp_path / "pred.csv"),
                 "-o", str(tmp_path / "scores.csv")]) == 0
    out = capsys.readouterr().out
    assert "4 questions, accuracy 0.750" in out
    assert pd.read_csv(tmp_path / "scores.csv").set_index("task").loc["presence", "accuracy"] == 0.75
    pd.DataFrame({"qid": ["p0"], "prediction": ["yes"]}).to_csv(tmp_path / "some.csv", index=False)
    assert main(["vqa", "evaluate", str(tmp_path / "vqa.parquet"), str(tmp_path / "some.csv")]) == 2
    assert main(["vqa", "evaluate", str(tmp_path / "vqa.parquet"), str(tmp_path / "absent.csv")]) == 1
    assert "predictions file not found" in capsys.readouterr().err


def test_predictions_as_json_values(tmp_path):
    questions = pd.DataFrame([q("yes_no", "yes", True, task="presence", qid="p0"),
                              q("open", "3", 3, task="counting", qid="c0"),
                              q("bbox", "{<0><0><50><50>}", [0, 0, 128, 128], task="referring", qid="r0")])
    path = tmp_path / "pred.jsonl"
    path.write_text('{"qid": "p0", "prediction": true}\n{"qid": "c0", "prediction": 3}\n'
                    '{"qid": "r0", "prediction": [0, 0, 120, 130]}\n')
    ev = scoring.evaluate(questions, scoring.read_predictions(path), resamples=0)
    assert ev.per_question["correct"].tolist() == [True, True, True]
    assert ev.table.set_index("task").loc["referring", "mean_iou"] == pytest.approx(15360 / (15600 + 16384 - 15360))
