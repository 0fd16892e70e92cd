"""Notebook 09 (questions) through the smoke report's recorded numbers."""

from __future__ import annotations

import math

NB = "09_questions"
CHOICES = {"area": 5, "dominant": 4, "relative_position": 4, "location": 4, "season": 4}


def test_nb09_questions_of_the_demo_tiles(smoke_report):
    rec = smoke_report[NB]
    per_task = rec["questions_per_task"]
    assert rec["n_questions"] == sum(per_task.values()) > 0
    assert rec["n_failed"] == 0 and rec["vqa_version"] == "1"
    # every label tile of the demo gets questions, and every label task has some
    assert rec["n_tiles_with_questions"] == rec["n_label_maps_read"] > 0
    for task in ("presence", "area", "counting", "dominant", "adjacency", "relative_position", "referring"):
        assert per_task[task] > 0, task
    assert per_task["season"] == 0  # the demo's label tiles carry no Sentinel-2 date
    # the stored answers agree with the labels, recomputed by the oracle's separate path
    assert rec["oracle_accuracy"] == 1.0
    assert rec["prior_overall"] < rec["oracle_accuracy"]
    assert rec["chance"]["presence"] == rec["chance"]["adjacency"] == 0.5
    assert rec["chance"]["area"] == 0.2 and rec["chance"]["dominant"] == 0.25
    # balance: yes/no within 40-60 % (a task of a handful of questions: yes and no one apart at most);
    # no choice position beyond its share of the dealt blocks
    for task, share in rec["yes_share"].items():
        n = per_task[task]
        yes = round(share * n)
        assert 0.4 <= share <= 0.6 or abs(yes - (n - yes)) <= 1, (task, share, n)
    for task, share in rec["top_position_share"].items():
        n = per_task[task]
        assert share * n <= math.ceil(n / CHOICES[task]) + 1e-9, (task, share, n)
    assert "label-grounded questions" in rec["summary"]
    # the template captioner's four variant sets, read back by the caption reader
    reader = rec["caption_reader"]
    assert rec["n_ablation_sets"] == 4 and {"captions_full", "captions_no_size", "captions_no_position",
                                             "captions_classes_only"} <= set(reader)
    for name, acc in reader.items():
        assert acc["adjacency"] == 0 and acc["referring"] == 0, name  # captions never say
    assert reader["captions_no_position"]["relative_position"] == 0  # no region sentences, no direction
    assert reader["captions_classes_only"]["relative_position"] == 0
    assert reader["captions_no_size"]["area"] <= reader["captions_full"]["area"]
