"""Baselines and paraphrase: the prior and the oracle on built questions, and the two LLM paths
(vision-model answers, paraphrases) through the generation layer against the local
OpenAI-compatible server."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cen import vqa
from cen.generate import GenerateConfig
from cen.vqa import baselines, paraphrase, scoring
from openai_server import billed_calls
from test_vqa import _workdir


pytestmark = pytest.mark.usefixtures("openai_test_key")


@pytest.fixture
def server(openai_server):
    return openai_server


@pytest.fixture
def built(tmp_path):
    workdir, tiles = _workdir(tmp_path, n_tiles=6)
    result = vqa.build_questions(workdir, per_tile=12, seed=1, progress=False)
    return workdir, pd.read_parquet(result.path)


def _cfg(server, **kw) -> GenerateConfig:
    base = dict(backend="openai", base_url=server.base_url, model="gpt-4o-mini", api_key_env="CEN_TEST_KEY",
                concurrency=4, backoff_base=0.01, progress=False)
    return GenerateConfig(**(base | kw))


@pytest.mark.parametrize("para, reason", [
    ("Does the upper-left part of the picture contain any developed area?", None),
    ("Is developed area found in the north-west of the image?", None),
    ("Does the top left contain buildings?", "drops the class name 'developed area'"),
    ("Is there developed area or forest in the top left of the image?", "mentions another class (tree)"),
    ("Is there developed area in the top right of the image?", "changes the region"),
    ("Is there developed area in the image?", "changes the region"),
    ("Is there developed area in the top left of the image", "not a question"),
    ("", "empty"),
    ("Is there developed area\nin the top left?", "more than one line"),
    ("Is there no developed area in the top left of the image?", "adds or drops a negation"),
    ("Where is developed area in the top left of the image?", "changes the kind of question (yes/no or not)"),
    ("Isn't there developed area in the top left of the image?", "adds or drops a negation"),
    ("Is the top left of the image without developed area?", "adds or drops a negation"),
])
def test_paraphrase_check(para, reason):
    assert paraphrase.check_paraphrase("Is there developed area in the top left of the image?", para) == reason


@pytest.mark.parametrize("original, para, reason", [
    ("How many separate patches of water are there in the image?", "Count the water patches: how many?", None),
    ("How many separate patches of water are there in the image?", "Are there separate patches of water in the image?",
     "changes the kind of question (yes/no or not)"),
    ("How many separate patches of water are there in the image?", "How many of the two patches of water are there?",
     "adds a number word"),
    ("Is water mostly north, south, east or west of tree in the image?",
     "Relative to tree, is water mostly north, south, east or west?", None),
    ("Is water mostly north, south, east or west of tree in the image?", "Is water mostly north of tree?",
     "changes a direction"),
    ("Is there water within 20 pixels of the edge?", "Is there water within 30 pixels of the edge?",
     "changes a number"),
])
def test_paraphrase_check_numbers_and_directions(original, para, reason):
    assert paraphrase.check_paraphrase(original, para) == reason


def test_paraphrase_check_keeps_the_order_of_two_classes_when_it_matters():
    original = "Where is water relative to tree in the image?"
    swapped = "Where is tree relative to water in the image?"
    assert paraphrase.check_paraphrase(original, swapped, ordered=True) == "changes the order of the classes"
    assert paraphrase.check_paraphrase(original, "In the image, where does water lie relative to tree?",
                                       ordered=True) is None
    assert paraphrase.check_paraphrase("Does water touch tree in the image?", "Does tree touch water in the image?") is None


def test_paraphrase_through_the_server_rejects_what_changes_the_question(server, built, tmp_path):
    workdir, q = built
    sub = q.groupby("task").head(2).reset_index(drop=True)
    cache = tmp_path / "gen.sqlite"
    out, report, result = paraphrase.paraphrase_questions(sub, _cfg(server), cache_path=cache)
    assert len(billed_calls(server.log)) == len(sub)
    # the local server answers with a caption, never a question: every paraphrase is rejected
    assert (report["status"] == "rejected").all() and len(report) == len(sub)
    pd.testing.assert_frame_equal(out, sub)  # rejected paraphrases keep the original wording
    again, report2, _ = paraphrase.paraphrase_questions(sub, _cfg(server), cache_path=cache)
    assert len(billed_calls(server.log)) == len(sub)  # answered from the cache
    assert report2["reason"].tolist() == report["reason"].tolist()


def test_prior_and_oracle(built):
    workdir, q = built
    oracle = scoring.evaluate(q, baselines.oracle_predictions(q, workdir), resamples=100)
    assert oracle.accuracy() == 1.0 and oracle.n_missing == 0
    test, train = q[q["split"] == "test"], q[q["split"] == "train"]
    prior = baselines.prior_baseline(test, train)
    assert prior["qid"].tolist() == test["qid"].tolist()
    # the prior answers a yes/no template with its most frequent training answer
    row = test[test["format"] == "yes_no"].iloc[0]
    same = train[(train["task"] == row["task"]) & (train["template_id"] == row["template_id"])]
    if len(same):
        counts = same["answer"].value_counts()
        assert prior.set_index("qid").loc[row["qid"], "prediction"] in set(counts[counts == counts.max()].index)
    # an oracle fed a wrong label map disagrees
    bad = q.copy()
    bad.loc[bad["task"] == "presence", "answer_value"] = bad.loc[bad["task"] == "presence", "answer_value"].map(
        {"true": "false", "false": "true"})
    bad.loc[bad["task"] == "presence", "answer"] = bad.loc[bad["task"] == "presence", "answer"].map(
        {"yes": "no", "no": "yes"})
    ev = scoring.evaluate(bad, baselines.oracle_predictions(bad, workdir), resamples=0)
    assert ev.table.set_index("task").loc["presence", "accuracy"] == 0.0


def test_prior_on_a_balanced_task_sits_at_chance():
    rng = np.random.default_rng(0)
    maps = np.full((400, 32, 32), 5, np.uint8)
    for m in maps:
        for c in rng.choice(np.arange(1, 12), 3, replace=False):
            y, x = rng.integers(0, 24, 2)
            m[y:y + 8, x:x + 8] = c
    splits = np.where(np.arange(400) % 2 == 0, "train", "test")
    q = vqa.questions_from_labels(maps, [f"t{i}" for i in range(400)], splits=splits, tasks=["presence"], per_tile=4)
    test = q[q["split"] == "test"]
    acc = scoring.evaluate(test, baselines.prior_baseline(test, q[q["split"] == "train"]), resamples=0).accuracy()
    assert 0.42 <= acc <= 0.58


def test_vlm_baseline_through_the_local_server(server, built, tmp_path):
    workdir, q = built
    sub = q.groupby("task").head(3).reset_index(drop=True)
    requests, kinds = baselines.vlm_requests(sub, workdir)
    assert set(kinds.values()) == {"label"}  # these tiles have no Sentinel-2 picture
    content = requests[0].messages[1]["content"]
    assert content[0]["text"].startswith(sub["question"].iloc[0]) and content[1]["type"] == "image_url"
    png = base64.b64decode(content[1]["image_url"]["url"].split(",", 1)[1])
    assert Image.open(io.BytesIO(png)).size == (64, 64)  # the full label map, not downsampled
    cache = tmp_path / "gen.sqlite"
    preds, result = baselines.vlm_predictions(sub, workdir, _cfg(server), cache_path=cache)
    assert len(billed_calls(server.log)) == len(sub) and set(preds["status"]) == {"ok"}
    assert preds["qid"].tolist() == sub["qid"].tolist() and preds["prediction"].notna().all()
    ev = scoring.evaluate(sub, preds[["qid", "prediction"]], resamples=50)
    # the server's caption-like answers are no yes/no and no integer: unreadable, hence wrong
    t = ev.table.set_index("task")
    assert t.loc["presence", "unreadable"] == t.loc["presence", "n"] and t.loc["presence", "accuracy"] == 0
    # "The scene 1 shows ..." reads as the integer 1: right exactly where the answer is 1
    counting = sub[sub["task"] == "counting"]
    assert t.loc["counting", "accuracy"] == (counting["answer"] == "1").mean()
    again, res2 = baselines.vlm_predictions(sub, workdir, _cfg(server), cache_path=cache)
    assert len(billed_calls(server.log)) == len(sub) and set(again["status"]) == {"cached"}
    stopped, res3 = baselines.vlm_predictions(sub, workdir, _cfg(server, budget_usd=0.0), cache_path=tmp_path / "other.sqlite")
    assert set(stopped["status"]) == {"budget_stopped"} and stopped["prediction"].isna().all()
    assert len(billed_calls(server.log)) == len(sub)
    with pytest.raises(ValueError, match="backend='openai'"):
        baselines.vlm_predictions(sub, workdir, GenerateConfig())


def test_every_template_passes_the_check_unchanged():
    for task, pools in vqa.templates().items():
        for items in pools.values():
            for tid, text in items:
                stem = text.format(a="developed area", b="bare land", region="the bottom right of the image")
                assert paraphrase.check_paraphrase(stem, stem, ordered=task == "relative_position") is None, tid


def _row(task, a=None, b=None, region="whole", choices=None):
    return {"task": task, "class_a": a, "class_b": b, "region": region, "choices": choices}


def test_caption_reader_rules():
    from cen.verify.parse import parse_caption
    from cen.vqa.caption_reader import answer_from_caption

    p = parse_caption("The image holds water, tree and grass. In the top left there is water, covering a large part. "
                      "The bottom left is mostly tree. Tree is the dominant land cover.")
    assert answer_from_caption(p, _row("presence", "water", region="top_left")) is True
    assert answer_from_caption(p, _row("presence", "water", region="bottom_right")) is False
    assert answer_from_caption(p, _row("presence", "grass")) is True
    assert answer_from_caption(p, _row("presence", "crop")) is False
    assert answer_from_caption(p, _row("area", "water", region="top_left")) == "large (50-79 %)"
    assert answer_from_caption(p, _row("area", "crop")) == "extra small (0-9 %)"  # not mentioned: the smallest bin
    assert answer_from_caption(p, _row("dominant", choices=["water", "tree", "crop", "grass"])) == "tree"
    assert answer_from_caption(p, _row("relative_position", "water", "tree")) == "north"
    assert answer_from_caption(p, _row("counting")) == 3
    assert answer_from_caption(p, _row("adjacency", "water", "tree")) is None
    flat = parse_caption("This tile contains water and tree.")
    assert answer_from_caption(flat, _row("presence", "water", region="top_left")) is False
    assert answer_from_caption(flat, _row("relative_position", "water", "tree")) is None


def test_caption_reader_measures_what_each_variant_leaves_out(tmp_path):
    from cen.generate import GenerateConfig
    from cen.generate.runner import generate_attributes_for_workdir
    from cen.stats import compute_stats
    from cen.vqa import caption_reader

    workdir, _ = _workdir(tmp_path, n_tiles=8)
    q = pd.read_parquet(vqa.build_questions(workdir, per_tile=20, seed=2, progress=False).path)
    compute_stats(workdir / "tiles.parquet", workdir / "stats.parquet", progress=False)
    for variant in ("full", "no_size", "no_position"):
        generate_attributes_for_workdir(workdir, variant, GenerateConfig(progress=False), paradigms=("gpt35",))
    table = caption_reader.compare_variants(q, workdir, resamples=0).set_index("task")
    assert {"captions_full", "captions_no_size", "captions_no_position"} <= set(table.columns)
    assert table.loc["area", "captions_full"] > table.loc["area", "captions_no_size"]
    assert table.loc["presence", "captions_full"] > table.loc["presence", "captions_no_position"]
    assert table.loc["adjacency"].drop("n").eq(0).all()
