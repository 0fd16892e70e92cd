"""cen.metrics: hand-checked scores, parity with pycocoevalcap, bad input, Java/SPICE absence, bootstrap."""

from __future__ import annotations

import json
import math
import random
import warnings
import zipfile

import numpy as np
import pytest

from cen import metrics as M

needs_java = pytest.mark.skipif(M.find_java() is None, reason="Java is not installed")

CLASSES = ["tree cover", "shrubland", "grassland", "cropland", "built-up area", "bare land", "snow and ice",
           "water", "herbaceous wetland", "mangroves", "moss and lichen"]
REGIONS = ["northern", "southern", "eastern", "western", "central"]
WORDS = ["mainly", "dominated by", "covered with", "mostly", "some", "small patches of", "a large extent of"]


def land_cover_caption(rng: random.Random, n_sentences: int | None = None) -> str:
    """A paragraph in the style of ChatEarthNet captions (for parity tests only)."""
    parts = [f"This image shows {rng.choice(WORDS)} {rng.choice(CLASSES)}."]
    for _ in range(n_sentences or rng.randint(3, 7)):
        parts.append(
            f"In the {rng.choice(REGIONS)} part, the land is {rng.choice(WORDS)} {rng.choice(CLASSES)}, "
            f"with about {rng.randint(1, 99)}% {rng.choice(CLASSES)} and {rng.choice(WORDS)} {rng.choice(CLASSES)}."
        )
    return " ".join(parts)


def realistic(n: int, seed: int = 0) -> tuple[dict[str, list[str]], dict[str, str]]:
    rng = random.Random(seed)
    refs = {f"tile_{i:04d}": [land_cover_caption(rng) for _ in range(rng.randint(1, 3))] for i in range(n)}
    cands = {k: land_cover_caption(rng) for k in refs}
    return refs, cands


# ---------------------------------------------------------------- hand-checked small cases


@needs_java
def test_identical_captions_score_one_and_disjoint_captions_zero():
    refs = {"same1": ["water in the north and trees in the south"], "same2": ["cropland covers the whole scene today"],
            "dis1": ["water in the north"], "dis2": ["trees cover everything"]}
    cands = {"same1": refs["same1"][0], "same2": refs["same2"][0], "dis1": "cropland dominates east",
             "dis2": "snow and ice"}
    ev = M.evaluate(refs, cands, metrics=["Bleu", "ROUGE_L", "CIDEr", "METEOR"])
    assert ev.tokenizer == "ptb"
    same, dis = ev.per_image.loc[["same1", "same2"]], ev.per_image.loc[["dis1", "dis2"]]
    for key in M.BLEU_KEYS:
        assert same[key].tolist() == pytest.approx([1.0, 1.0], abs=1e-8)
        assert (dis[key] < 1e-6).all()
    assert same["ROUGE_L"].tolist() == [1.0, 1.0] and dis["ROUGE_L"].tolist() == [0.0, 0.0]
    assert dis["CIDEr"].tolist() == [0.0, 0.0] and (same["CIDEr"] > 1).all()
    # METEOR keeps a small fragmentation penalty even for a perfect match
    assert (same["METEOR"] > 0.9).all() and dis["METEOR"].tolist() == [0.0, 0.0]
    # the METEOR process is kept and reused by the next evaluation (no second JVM start)
    pids = {p.proc.pid for p in M._POOL}
    assert pids
    again = M.evaluate(refs, cands, metrics=["METEOR"], meteor_processes=1)
    assert again.scores["METEOR"] == ev.scores["METEOR"]
    assert {p.proc.pid for p in M._POOL} & pids


@needs_java
def test_one_shared_unigram_hand_computed():
    # image a shares exactly the unigram "a" of four words; image b is identical.
    refs = {"a": ["a x y z"], "b": ["e f g h"]}
    cands = {"a": "a b c d", "b": "e f g h"}
    ev = M.evaluate(refs, cands, metrics=["Bleu", "ROUGE_L", "CIDEr"])
    row = ev.per_image.loc["a"]
    assert row["Bleu_1"] == pytest.approx(0.25, abs=1e-9)  # 1 of 4 unigrams, equal lengths: no brevity penalty
    assert row["Bleu_2"] < 1e-6
    assert row["ROUGE_L"] == pytest.approx(0.25)  # LCS 1: P = R = 1/4, so F = 1/4 for any beta
    # CIDEr-D: every n-gram occurs in one of the 2 documents -> idf = log 2 for all. Image a: unigram
    # cosine 1/4, higher orders 0, mean 1/16, x10 = 0.625. Image b: cosine 1 everywhere -> 10.
    assert row["CIDEr"] == pytest.approx(0.625)
    assert ev.per_image.loc["b", "CIDEr"] == pytest.approx(10.0)
    assert ev.scores["CIDEr"] == pytest.approx((0.625 + 10.0) / 2)
    # corpus BLEU-1 from summed statistics: (1 + 4) matches of (4 + 4)
    assert ev.scores["Bleu_1"] == pytest.approx(5 / 8, abs=1e-9)


def test_lcs_matches_dynamic_programming():
    from pycocoevalcap.rouge.rouge import my_lcs

    rng = random.Random(3)
    for _ in range(200):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 40))]
        b = [rng.choice("abcdef") for _ in range(rng.randint(0, 40))]
        assert M.lcs_length(a, b) == my_lcs(a, b)


# ---------------------------------------------------------------- parity with the raw scorers


@needs_java
def test_parity_with_raw_pycocoevalcap_scorers():
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    refs, cands = realistic(100)
    cands["tile_0001"] = "Water ||| trees, São Tomé at 40° and the \"lake\"."
    ev = M.evaluate(refs, cands, metrics=["Bleu", "METEOR", "ROUGE_L", "CIDEr"], meteor_processes=2)

    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in refs.items()})
    res = tok.tokenize({k: [{"caption": v}] for k, v in cands.items()})
    bleu, bleu_each = Bleu(4).compute_score(gts, res, verbose=0)
    meteor, meteor_each = Meteor().compute_score(gts, res)
    rouge, rouge_each = Rouge().compute_score(gts, res)
    cider, cider_each = Cider().compute_score(gts, res)
    raw = {"Bleu_1": bleu[0], "Bleu_2": bleu[1], "Bleu_3": bleu[2], "Bleu_4": bleu[3],
           "METEOR": meteor, "ROUGE_L": rouge, "CIDEr": cider}
    for key, value in raw.items():
        assert ev.scores[key] == pytest.approx(value, abs=1e-9), key
    ids = list(gts)
    assert list(ev.per_image.index) == ids
    np.testing.assert_allclose(ev.per_image["Bleu_4"], bleu_each[3], atol=1e-9)
    np.testing.assert_allclose(ev.per_image["METEOR"], meteor_each, atol=1e-9)
    np.testing.assert_allclose(ev.per_image["ROUGE_L"], rouge_each, atol=1e-12)
    np.testing.assert_allclose(ev.per_image["CIDEr"], cider_each, atol=1e-9)

    # resampling with every image once reproduces the corpus scores, METEOR through its EVAL line
    boot = ev.bootstrap(200, seed=1)
    assert list(boot.index) == list(raw)
    assert (boot["low"] <= boot["score"] + 1e-12).all() and (boot["score"] <= boot["high"] + 1e-12).all()
    assert (boot["high"] > boot["low"]).all()
    assert boot.attrs["full_sample_deviation"] < 1e-9  # METEOR's summed statistics through one EVAL line


@needs_java
def test_line_breaks_separators_and_long_captions_are_handled_alike_for_references_and_candidates():
    odd = "Water ||| trees\nin the north\u2028and\x0bcropland in the south, São Tomé."
    rng = random.Random(5)
    long_ref, long_cand = land_cover_caption(rng, 80), land_cover_caption(rng, 80)
    assert len(long_cand.split()) > 1500
    refs = {"a": [odd], "b": ["plain reference about grassland in the east"], "c": ["bare land and water"],
            "long": [long_ref]}
    cands = {"a": odd, "b": "plain reference about grassland in the east", "c": "bare land and water",
             "long": long_cand}
    ev = M.evaluate(refs, cands, metrics=["Bleu", "ROUGE_L", "METEOR"], meteor_timeout=120, keep_tokens=True)
    # the odd caption matches itself exactly, and no line break shifted a caption onto another image
    assert ev.per_image["ROUGE_L"].tolist()[:3] == [1.0, 1.0, 1.0]
    assert ev.per_image["Bleu_4"].iloc[:3].min() > 0.99
    assert 0 < ev.per_image.loc["long", "METEOR"] < 1
    # the separator reaches the scorers as the same PTB tokens on both sides
    gts, res = ev.tokenized
    assert gts["a"] == res["a"] and "| | |" in res["a"][0] and "\n" not in res["a"][0]


def test_meteor_that_does_not_answer_is_killed_with_a_clear_error(monkeypatch, tmp_path):
    """A "java" that reads every line and never answers: the METEOR process is killed after the
    timeout, whatever the machine's speed (no race with a real JVM's start-up)."""
    import psutil

    scripts = {
        # reads every line, never answers
        "mute": ("while read line; do :; done", r"no answer from the METEOR process for 0 s after 0 of 1 lines; killed it"),
        # closes its output and lives on (waiting for it would hang for ever)
        "deaf": ("exec cat > /dev/null", r"METEOR process closed its output but kept running \(killed it\) after 0 of 1"),
    }
    for name, (body, message) in scripts.items():
        java = tmp_path / name / "java"
        java.parent.mkdir()
        java.write_text(f'#!/bin/sh\necho $$ > "$(dirname "$0")/pid"\n{body}\n')
        java.chmod(0o755)
        monkeypatch.setenv("CEN_JAVA", str(java))
        with pytest.raises(M.MetricsError, match=message):
            M.evaluate({"a": ["water"]}, {"a": "water"}, metrics=["METEOR"], tokenize=False, meteor_timeout=0.2)
        pid = int((java.parent / "pid").read_text())
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, name
        assert not [p for p in M._POOL if p.java == str(java)]  # not kept for reuse


# ---------------------------------------------------------------- bad input


def test_missing_candidates_error_names_source_and_ids():
    refs = {"a": ["x"], "b": ["y"], "c": ["z"]}
    with pytest.raises(M.MetricsInputError, match=r"candidates: no candidate for 2 of 3 .*'b', 'c'"):
        M.validate(refs, {"a": "x"})


def test_missing_policies():
    refs = {"a": ["x"], "b": ["y"]}
    empty = M.validate(refs, {"a": "x"}, missing="empty")
    assert empty.ids == ["a", "b"] and empty.candidates["b"] == ""
    dropped = M.validate(refs, {"a": "x"}, missing="drop")
    assert dropped.ids == ["a"] and dropped.notes


def test_extra_candidates():
    with pytest.raises(M.MetricsInputError, match=r"1 candidate ids have no references .*'zz'"):
        M.validate({"a": ["x"]}, {"a": "x", "zz": "y"})
    assert M.validate({"a": ["x"]}, {"a": "x", "zz": "y"}, extra="ignore").ids == ["a"]


def test_empty_and_non_string_captions():
    with pytest.raises(M.MetricsInputError, match=r"empty candidate captions for 1 .*'b'"):
        M.validate({"a": ["x"], "b": ["y"]}, {"a": "x", "b": "  "})
    with pytest.raises(M.MetricsInputError, match=r"empty reference captions .*'a'"):
        M.validate({"a": ["x", ""]}, {"a": "x"})
    assert M.validate({"a": ["x"], "b": ["y"]}, {"a": "x", "b": ""}, empty="keep").candidates["b"] == ""
    with pytest.raises(M.MetricsInputError, match=r"every reference is empty .*'a'"):
        M.validate({"a": [""]}, {"a": "x"}, empty="keep")
    with pytest.raises(M.MetricsInputError, match=r"candidates: 1 non-string captions, first ids '7'.*int"):
        M.validate({7: ["x"]}, {7: 12})
    with pytest.raises(M.MetricsInputError, match=r"not exactly one candidate.*'a'"):
        M.validate({"a": ["x"]}, {"a": ["x", "y"]})
    with pytest.raises(ValueError, match="missing must be one of"):
        M.validate({"a": ["x"]}, {"a": "x"}, missing="zero")


def test_ids_are_compared_as_strings():
    cs = M.validate({1: ["x"], 2: ["y"]}, {"1": "x", "2": "y"})
    assert cs.ids == ["1", "2"]


def test_ids_that_collide_as_strings_are_refused():
    with pytest.raises(M.MetricsInputError, match=r"references: ids 1 and '1' are the same id as strings"):
        M.evaluate({1: ["x"], "1": ["y"]}, {"1": "x"}, metrics=["ROUGE_L"])
    with pytest.raises(M.MetricsInputError, match=r"candidates: ids '2' and 2 are the same id"):
        M.validate({"2": ["x"]}, {"2": "x", 2: "y"})


def test_unknown_metric():
    with pytest.raises(ValueError, match="unknown metric 'BLEURT'"):
        M.evaluate({"a": ["x"]}, {"a": "x"}, metrics=["BLEURT"])


# ---------------------------------------------------------------- readers


def test_readers_for_every_format(tmp_path):
    (tmp_path / "coco.json").write_text(json.dumps([{"image_id": 1, "caption": "one"}, {"image_id": 2, "caption": "two"}]))
    (tmp_path / "release.json").write_text(json.dumps([{"image": "s2_1.png", "caption": "one"},
                                                       {"image": "s2_1.png", "caption": "uno"}]))
    (tmp_path / "ann.json").write_text(json.dumps({"annotations": [{"image_id": 5, "caption": "five"}]}))
    (tmp_path / "c.jsonl").write_text('{"image_id": "a", "caption": "x"}\n\n{"image_id": "b", "caption": "y"}\n')
    (tmp_path / "c.csv").write_text('tile_id,text\na,"x, with comma"\nb,y\n')
    assert M.read_candidates(tmp_path / "coco.json") == {"1": "one", "2": "two"}
    assert M.read_references(tmp_path / "release.json") == {"s2_1.png": ["one", "uno"]}
    assert M.read_references(tmp_path / "ann.json") == {"5": ["five"]}
    assert M.read_candidates(tmp_path / "c.jsonl") == {"a": "x", "b": "y"}
    assert M.read_candidates(tmp_path / "c.csv") == {"a": "x, with comma", "b": "y"}


def test_reader_errors_name_the_file(tmp_path):
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps([{"image_id": 1, "caption": "a"}, {"image_id": 1, "caption": "b"}]))
    with pytest.raises(M.MetricsInputError, match=r"dup.json: 1 duplicate candidate ids, first '1'"):
        M.read_candidates(dup)
    assert M.read_candidates(dup, duplicates="last") == {"1": "b"}
    assert M.read_candidates(dup, duplicates="first") == {"1": "a"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image_id": 1, "caption": "a"}\n{oops\n')
    with pytest.raises(M.MetricsInputError, match=r"bad.jsonl, line 2: not JSON"):
        M.read_records(bad)
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("name,caption\na,b\n")
    with pytest.raises(M.MetricsInputError, match=r"nocol.csv: CSV needs an id column"):
        M.read_records(nocol)
    nostr = tmp_path / "nostr.json"
    nostr.write_text(json.dumps([{"image_id": 1, "caption": None}]))
    with pytest.raises(M.MetricsInputError, match=r"nostr.json: 1 non-string captions"):
        M.read_references(nostr)
    with pytest.raises(M.MetricsInputError, match="does not exist"):
        M.read_records(tmp_path / "absent.json")
    rec = tmp_path / "rec.json"
    rec.write_text(json.dumps([{"image_id": 1}]))
    with pytest.raises(M.MetricsInputError, match=r"rec.json, record 0: needs an id field"):
        M.read_records(rec)


def test_readers_accept_a_utf8_bom_and_name_any_other_encoding(tmp_path):
    bom = b"\xef\xbb\xbf"
    (tmp_path / "c.csv").write_bytes(bom + "image_id,caption\na,café\n".encode())
    (tmp_path / "c.json").write_bytes(bom + json.dumps([{"image_id": 1, "caption": "x"}]).encode())
    (tmp_path / "c.jsonl").write_bytes(bom + b'{"image_id": "b", "caption": "y"}\n')
    assert M.read_candidates(tmp_path / "c.csv") == {"a": "café"}  # the BOM is not part of the id column name
    assert M.read_candidates(tmp_path / "c.json") == {"1": "x"}
    assert M.read_candidates(tmp_path / "c.jsonl") == {"b": "y"}
    (tmp_path / "u16.csv").write_bytes("image_id,caption\na,x\n".encode("utf-16"))
    with pytest.raises(M.MetricsInputError, match=r"u16.csv: the file is UTF-16 \(byte-order mark fffe\); .*UTF-8"):
        M.read_records(tmp_path / "u16.csv")
    latin = '[{"image_id": 1, "caption": "caf\u00e9"}]'.encode("latin-1")
    (tmp_path / "latin.json").write_bytes(latin)
    with pytest.raises(M.MetricsInputError) as err:
        M.read_records(tmp_path / "latin.json")
    msg = str(err.value)
    assert f"latin.json: not UTF-8 (byte 0xe9 at offset {latin.index(0xE9)} is invalid)" in msg and "\n" not in msg


@needs_java
def test_evaluate_files_names_the_files(tmp_path):
    refs = tmp_path / "refs.json"
    cands = tmp_path / "cands.csv"
    refs.write_text(json.dumps([{"image": "a", "caption": "water and trees"}, {"image": "b", "caption": "crops"}]))
    cands.write_text("image_id,caption\na,water and trees\n")
    with pytest.raises(M.MetricsInputError, match=r"cands.csv: no candidate for 1 of 2 .*'b'"):
        M.evaluate_files(refs, cands)
    ev = M.evaluate_files(refs, cands, metrics=["ROUGE_L"], missing="empty", empty="keep")
    assert ev.per_image["ROUGE_L"].tolist() == [1.0, 0.0]


# ---------------------------------------------------------------- Java and SPICE absent


def test_without_java_the_python_metrics_still_run(monkeypatch, tmp_path):
    monkeypatch.setenv("CEN_JAVA", str(tmp_path / "no-java-here"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on PATH either
    with pytest.warns(UserWarning, match="no-java-here.*does not exist; and there is no java on PATH"):
        assert M.find_java() is None
    refs, cands = realistic(20)
    ev = M.evaluate(refs, cands)
    assert set(ev.not_computed) == {"METEOR", "SPICE"}
    assert "default-jre-headless" in ev.not_computed["METEOR"] and "openjdk" in ev.not_computed["METEOR"]
    assert "METEOR and SPICE" in ev.not_computed["METEOR"]
    assert ev.not_computed["METEOR"].startswith("$CEN_JAVA is ") and "no-java-here" in ev.not_computed["METEOR"]
    assert ev.tokenizer == "python-approx"
    assert set(ev.scores) == {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"}
    assert all(0 < ev.scores[k] < 1 for k in ("Bleu_1", "ROUGE_L"))
    boot = ev.bootstrap(50)
    assert boot["low"].notna().all() and boot.equals(ev.bootstrap(50)) and not boot.equals(ev.bootstrap(50, seed=1))
    with pytest.raises(M.MetricsError, match="default-jre-headless"), pytest.warns(UserWarning, match="CEN_JAVA"):
        M.ptb_tokenize(["x"])


@needs_java
def test_cen_java_pointing_nowhere_says_so_and_falls_back_to_path(monkeypatch, tmp_path):
    import shutil

    on_path = shutil.which("java")
    monkeypatch.setenv("CEN_JAVA", str(tmp_path / "typo" / "java"))
    with pytest.warns(UserWarning, match=r"typo/java', which does not exist; using java on PATH"):
        assert M.find_java() == on_path
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # evaluate reports it in its notes, not as a warning too
        ev = M.evaluate({"a": ["water and trees"]}, {"a": "water and trees"}, metrics=["Bleu_1"])
    assert ev.tokenizer == "ptb" and ev.scores["Bleu_1"] == pytest.approx(1.0)
    assert any("typo/java" in n and "using java on PATH" in n for n in ev.notes)
    monkeypatch.setenv("CEN_JAVA", on_path)
    assert M.java_env_problem() is None and M.find_java() == on_path


def test_python_tokenizer_drops_ptb_punctuation():
    assert M.python_tokenize(["Water, trees; and the 40% (lake)."]) == ["water trees and the 40 % ( lake )"]


def test_spice_absent_gives_the_reason(monkeypatch, tmp_path):
    monkeypatch.setenv(M.SPICE_ENV, str(tmp_path / "empty"))
    monkeypatch.setenv("CEN_CACHE_DIR", str(tmp_path / "cache"))
    if (M._package_dir() / "spice" / "lib" / M.CORENLP_JARS[0]).exists():
        pytest.skip("CoreNLP jars are installed inside pycocoevalcap")
    ev = M.evaluate({"a": ["water"]}, {"a": "water"}, metrics=["SPICE", "ROUGE_L"])
    assert "SPICE" not in ev.scores and "SPICE" not in ev.per_image
    reason = ev.not_computed["SPICE"]
    assert "CoreNLP 3.6.0" in reason and "cen metrics setup-spice" in reason and M.SPICE_ENV in reason
    assert ev.scores["ROUGE_L"] == 1.0


def test_setup_spice_downloads_and_keeps_the_two_jars(http_server, tmp_path):
    z = http_server.root / "corenlp.zip"
    with zipfile.ZipFile(z, "w") as archive:
        archive.writestr("stanford-corenlp-full-2015-12-09/stanford-corenlp-3.6.0.jar", b"jar-1")
        archive.writestr("stanford-corenlp-full-2015-12-09/stanford-corenlp-3.6.0-models.jar", b"jar-2")
        archive.writestr("stanford-corenlp-full-2015-12-09/README.txt", b"other")
    (http_server.root / "notzip.zip").write_bytes(b"<html>not found</html>")
    dest = M.setup_spice(f"{http_server.url}/corenlp.zip", tmp_path / "spice")
    assert sorted(p.name for p in dest.iterdir()) == sorted(M.CORENLP_JARS)
    assert (dest / "stanford-corenlp-3.6.0.jar").read_bytes() == b"jar-1"
    with pytest.raises(M.MetricsError, match="not a zip file"):
        M.setup_spice(f"{http_server.url}/notzip.zip", tmp_path / "other")
    assert not any((tmp_path / "other").iterdir())


def test_setup_spice_resumes_a_cut_download_with_the_release_downloader(http_server, tmp_path):
    from cen.sources import chatearthnet

    z = http_server.root / "corenlp.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_STORED) as archive:
        for jar in M.CORENLP_JARS:
            archive.writestr(f"corenlp/{jar}", bytes(range(256)) * 400)  # ~100 kB each, stored
    http_server.truncate_after = 20_000  # every response is cut after 20 kB: 4 attempts get 80 of ~200 kB
    with pytest.raises(chatearthnet.DownloadError, match="partial data kept in .*corenlp-3.6.0.zip.part"):
        M.setup_spice(f"{http_server.url}/corenlp.zip", tmp_path / "spice", progress=False)
    have = (tmp_path / "spice" / ".corenlp-3.6.0.zip.part").stat().st_size
    assert have == 4 * 20_000
    http_server.truncate_after = None
    n_before = len(http_server.requests)
    dest = M.setup_spice(f"{http_server.url}/corenlp.zip", tmp_path / "spice", progress=False)
    assert [(r.range, r.status) for r in http_server.requests[n_before:]] == [(f"bytes={have}-", 206)]
    assert (dest / M.CORENLP_JARS[1]).read_bytes() == bytes(range(256)) * 400
    assert sorted(p.name for p in dest.iterdir()) == sorted(M.CORENLP_JARS)  # zip and .part gone


# ---------------------------------------------------------------- bootstrap and paired test


def test_bleu_from_summed_statistics_is_corpus_bleu():
    from pycocoevalcap.bleu.bleu import Bleu

    refs, cands = realistic(60, seed=2)
    gts = {k: [c.lower() for c in v] for k, v in refs.items()}
    res = {k: [v.lower()] for k, v in cands.items()}
    ids = list(gts)
    stats = M.bleu_statistics(gts, res, ids)
    assert stats.shape == (60, 10) and stats.dtype == np.int64
    raw, _ = Bleu(4).compute_score(gts, res, verbose=0)
    np.testing.assert_allclose(M.bleu_from_statistics(stats.sum(axis=0)), raw, atol=1e-12)


def test_bootstrap_weights_are_seeded_counts():
    w = M.bootstrap_weights(30, 40, seed=4)
    assert w.shape == (40, 30) and (w.sum(axis=1) == 30).all()
    assert np.array_equal(w, M.bootstrap_weights(30, 40, seed=4))
    assert not np.array_equal(w, M.bootstrap_weights(30, 40, seed=5))


@needs_java
def test_paired_test_separates_systems():
    refs, cands = realistic(80, seed=7)
    rng = random.Random(8)
    worse = {k: " ".join(rng.sample(v.split(), len(v.split()))) for k, v in cands.items()}
    good = {k: v[0] for k, v in refs.items()}
    a = M.evaluate(refs, good, metrics=["Bleu", "ROUGE_L", "CIDEr"])
    b = M.evaluate(refs, worse, metrics=["Bleu", "ROUGE_L", "CIDEr"])
    t = M.paired_test(a, b, resamples=300)
    assert (t["diff"] > 0).all() and (t["p_value"] < 0.01).all() and (t["low"] > 0).all()
    same = M.paired_test(a, a, resamples=100)
    assert (same["diff"] == 0).all() and (same["p_value"] == 1.0).all()
    c = M.evaluate({k: refs[k] for k in list(refs)[:10]}, {k: good[k] for k in list(refs)[:10]}, metrics=["ROUGE_L"])
    with pytest.raises(M.MetricsInputError, match="different images"):
        M.paired_test(a, c)
    assert math.isclose(t.loc["ROUGE_L", "a"], a.scores["ROUGE_L"])


def test_cli_evaluate_writes_scores_and_reports_bad_input(tmp_path, capsys):
    from cen.cli import main

    refs, cands = tmp_path / "refs.json", tmp_path / "cands.jsonl"
    refs.write_text(json.dumps([{"image": "a", "caption": "water and trees"}, {"image": "b", "caption": "crops"}]))
    cands.write_text('{"image_id": "a", "caption": "water and trees"}\n{"image_id": "b", "caption": "grass"}\n')
    out = tmp_path / "scores.json"
    assert main(["metrics", "evaluate", str(refs), str(cands), "--metrics", "ROUGE_L", "--bootstrap", "20",
                 "--json", str(out), "--per-image", str(tmp_path / "each.csv")]) == 0
    data = json.loads(out.read_text())
    assert data["scores"]["ROUGE_L"] == pytest.approx(0.5) and data["n_images"] == 2
    assert data["intervals"][0]["metric"] == "ROUGE_L"
    assert (tmp_path / "each.csv").read_text().startswith("image_id,ROUGE_L")
    cands.write_text('{"image_id": "a", "caption": "water and trees"}\n')
    assert main(["metrics", "evaluate", str(refs), str(cands), "--metrics", "ROUGE_L"]) == 1
    assert "cands.jsonl: no candidate for 1 of 2" in capsys.readouterr().err


@needs_java
def test_a_failing_spice_is_reported_and_the_other_metrics_still_run(monkeypatch, tmp_path):
    jars = tmp_path / "corenlp"
    jars.mkdir()
    for name in M.CORENLP_JARS:
        (jars / name).write_bytes(b"not a jar")
    monkeypatch.setenv(M.SPICE_ENV, str(jars))
    monkeypatch.setenv("CEN_CACHE_DIR", str(tmp_path / "cache"))
    assert M.spice_jar_dir() == jars
    ev = M.evaluate({"a": ["water and trees"]}, {"a": "water and trees"}, metrics=["SPICE", "ROUGE_L"])
    assert ev.not_computed["SPICE"].startswith("SPICE failed")
    assert ev.scores == {"ROUGE_L": 1.0}
