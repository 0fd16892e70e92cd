"""Faults to measure the checks on: a hand-written set, and faults planted by this module (a self-test).

**The hand-written set** (:data:`FAULT_SET`, ``data/verify_faults/handwritten.jsonl``): captions
in the style of the release's GPT-3.5 and GPT-4V answers, written by hand against the real label
statistics of demo tiles (their region counts are stored with each case), each with the flags a
correct checker must raise: comparisons between images, hedging words, a hallucinated lake, a
class in the wrong quadrant, an overstated share, colour words, a denied or omitted class, a
truncated answer, and correct captions that must raise none. :func:`evaluate_fault_set` gives
detection (recall) and false flags (precision) on it. It was not written by the code it tests.

**Planted faults (self-test)**: :func:`inject_faults` copies clean captions and plants one known
fault each by string edits of this module, then :func:`detect_injected` measures which the
checks detect. Because the same project wrote both the planted phrasing and the checks, the
rate shows the checks still catch what they were built for, not how they do on real model
output. The output is labelled ``injected``; it never enters the verified dataset.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from cen import landcover, paths
from cen.verify import lexicon as lx
from cen.verify.checks import CHECK_CODES, CheckConfig, check_caption, region_shares, validate_counts

FAULTS: dict[str, str] = {
    "cross_image": "cross_image",
    "hedging": "banned_word",
    "colour": "colour_word",
    "hallucinated_lake": "hallucinated_class",
    "wrong_quadrant": "wrong_region",
    "wrong_proportion": "wrong_proportion",
    "truncated": "truncated",
}
"""Fault name -> the check code that should catch it."""

_SURFACE = {1: "a small lake", 2: "a cluster of buildings", 3: "a patch of forest", 4: "some shrubland",
            5: "a stretch of grassland", 6: "several crop fields", 7: "an area of bare land", 8: "snow cover",
            9: "a wetland", 10: "a mangrove stand", 11: "moss"}


def _first_sentence_end(text: str) -> int:
    m = re.search(r"[.!?](\s|$)", text)
    return m.start() if m else len(text.rstrip())


def plant(fault: str, text: str, counts: np.ndarray, paradigm: str, rng: np.random.Generator) -> str | None:
    """``text`` with one fault planted, or ``None`` when the fault cannot apply to this caption."""
    counts = np.asarray(counts)
    paradigm = lx.normalise_paradigm(paradigm)
    whole = counts[lx.WHOLE]
    if fault == "cross_image":
        end = _first_sentence_end(text)
        first = re.sub(r"^(The|This) image\b", "the fourth image", text[:end], count=1)
        if first == text[:end]:
            first = first[0].lower() + first[1:]
        return "Similarly, " + first + " with a larger extent than in the other images" + text[end:]
    if fault == "hedging":
        end = _first_sentence_end(text)
        return text[:end] + ", possibly indicating a transition between land uses" + text[end:]
    if fault == "colour":
        if not lx.PARADIGM_FORBIDS_COLOUR[paradigm]:
            return None
        cls = int(np.argmax(whole[1:])) + 1
        colour = landcover.CLASSES[cls].colour_word
        return text.rstrip() + f" The {colour} areas of the map mark the {landcover.CLASSES[cls].name_gpt35}."
    if fault == "hallucinated_lake":
        absent = [c for c in range(1, landcover.N_INDICES) if whole[c] == 0]
        if not absent:
            return None
        cls = 1 if 1 in absent else int(rng.choice(absent))
        return text.rstrip() + f" There is also {_SURFACE[cls]} in the middle of the image."
    if fault == "wrong_quadrant":
        options = [(c, r) for c in range(1, landcover.N_INDICES) if whole[c] > 0
                   for r in (lx.TOP_LEFT, lx.TOP_RIGHT, lx.BOTTOM_LEFT, lx.BOTTOM_RIGHT) if counts[r, c] == 0]
        if not options:
            return None
        cls, region = options[int(rng.integers(len(options)))]
        return text.rstrip() + f" The {lx.REGIONS[region]} also contains {_SURFACE[cls]}."
    if fault == "wrong_proportion":
        shares = region_shares(counts)[lx.WHOLE]
        small = [c for c in range(1, landcover.N_INDICES) if 0 < shares[c] < 0.5]
        if not small:
            return None
        cls = int(rng.choice(small))
        return text.rstrip() + f" Overall, {landcover.CLASSES[cls].name_gpt35} covers an extra large portion of the image."
    if fault == "truncated":
        words = text.split()
        if len(words) < 8:
            return None
        cut = int(len(words) * 0.7)
        return " ".join(words[:cut]) + " " + words[cut][: max(1, len(words[cut]) // 2)]
    raise ValueError(f"unknown fault {fault!r}; expected one of {', '.join(FAULTS)}")


def inject_faults(captions: pd.DataFrame, counts: np.ndarray, seed: int = 0, per_fault: int | None = None) -> pd.DataFrame:
    """Plant every fault in copies of the captions (up to ``per_fault`` captions per fault).

    Returns one row per planted fault: ``row`` (source caption), ``tile_id``, ``paradigm``,
    ``fault``, ``expected_code``, ``text`` (with the fault), ``original``, ``injected`` (True).
    """
    counts = validate_counts(counts)
    rng = np.random.default_rng(seed)
    rows = []
    for fault, code in FAULTS.items():
        done = 0
        for i in rng.permutation(len(captions)):
            if per_fault is not None and done >= per_fault:
                break
            rec = captions.iloc[int(i)]
            if not isinstance(rec["text"], str) or not rec["text"].strip():
                continue
            text = plant(fault, rec["text"], counts[int(i)], rec["paradigm"], rng)
            if text is None:
                continue
            rows.append({"row": int(i), "tile_id": rec["tile_id"], "paradigm": rec["paradigm"], "fault": fault,
                         "expected_code": code, "text": text, "original": rec["text"], "injected": True})
            done += 1
    return pd.DataFrame(rows, columns=["row", "tile_id", "paradigm", "fault", "expected_code", "text",
                                       "original", "injected"])


def detect_injected(injected: pd.DataFrame, counts: np.ndarray, config: CheckConfig = CheckConfig()) -> pd.DataFrame:
    """Run the checks on planted faults: adds ``codes`` found and ``detected`` (expected code among them).

    ``counts`` are the region counts of the *source* captions (indexed by ``row``).
    """
    counts = validate_counts(counts)
    codes = [sorted({f.code for f in check_caption(r.text, counts[r.row], r.paradigm, config)})
             for r in injected.itertuples()]
    out = injected.copy()
    out["codes"] = codes
    out["detected"] = [e in c for e, c in zip(out["expected_code"], codes)]
    return out


def detection_rates(detected: pd.DataFrame) -> pd.DataFrame:
    """Per fault: how many were planted and the share the expected check caught."""
    g = detected.groupby("fault", sort=False)
    return pd.DataFrame({"expected_check": g["expected_code"].first(), "planted": g.size(),
                         "detected": g["detected"].sum(), "detection_rate": g["detected"].mean()}).reset_index()


def as_captions(injected: pd.DataFrame) -> pd.DataFrame:
    """Planted faults as a captions table with unique keys (``tile_id`` gets ``#injected-<fault>``)."""
    out = injected.copy()
    out["source_tile_id"] = out["tile_id"]
    out["tile_id"] = out["tile_id"].astype(str) + "#injected-" + out["fault"] + "-" + out.groupby(
        ["tile_id", "fault"]).cumcount().astype(str)
    return out


DEMO_SCRIPT_FAULTS = ("truncated", "hallucinated_lake", "wrong_quadrant")
"""Planted faults the scripted demo reviewer (:func:`demo_review_script`) decides on."""


def demo_review_script(queue: pd.DataFrame, faults: Sequence[str] = DEMO_SCRIPT_FAULTS) -> list[dict]:
    """Reviewer decisions for planted faults waiting in a review queue (the notebook-04 demo):
    a truncated answer is rejected, the other ``faults`` get their clean ``original`` text back,
    everything else is left undecided. ``queue`` needs ``key``, ``fault`` and ``original``."""
    return [{"key": k, "action": "reject", "note": "truncated answer"} if f == "truncated"
            else {"key": k, "action": "edit", "text": o, "note": "restored the clean caption"}
            for k, f, o in zip(queue["key"], queue["fault"], queue["original"]) if f in faults]


def score_by_fault(scores: pd.DataFrame, faults: Sequence[str], clean: float | None = None) -> pd.DataFrame:
    """Mean label consistency (``score`` of :func:`cen.verify.score.score_table`) per planted fault,
    column ``"mean consistency with the fault"``, plus the ``clean`` captions' mean for comparison."""
    by_fault = scores.assign(fault=np.asarray(faults)).groupby("fault")["score"].mean()
    out = by_fault.to_frame("mean consistency with the fault")
    return out.assign(clean=clean) if clean is not None else out


def counts_per_check_by_source(result, source_col: str = "source_tile_id"):
    """:meth:`~cen.verify.table.VerificationResult.counts_per_check` of planted faults, with
    ``duplicate`` counted only between copies of *different* source captions.

    Several faults are planted in copies of one caption; once a reviewer restores the clean text
    of two of them, the copies are identical by construction, which says nothing about the data.
    """
    per = result.counts_per_check()
    table = result.table.reset_index(drop=True)
    sources = table[source_col].astype(str)

    def real_duplicates(flags: pd.DataFrame, texts: pd.Series) -> int:
        rows = flags.loc[flags["code"] == "duplicate", "row"].unique()
        norm = texts.fillna("").map(lambda t: " ".join(str(t).lower().split()))
        return int(sum(sources[norm == norm.iloc[int(r)]].nunique() > 1 for r in rows))

    dup = per["check"] == "duplicate"
    per.loc[dup, "captions_flagged"] = real_duplicates(result.flags_original, table["text"])
    per.loc[dup, "after_fixes_and_review"] = real_duplicates(result.flags, table["accepted_text"])
    return per


# ----------------------------------------------------------------------------------------------
# the hand-written fault set

FAULT_SET = paths.DATA_DIR / "verify_faults" / "handwritten.jsonl"
"""Hand-written faulty and correct captions with their expected flags (see ``data/verify_faults/README.md``)."""

PER_CAPTION_CODES = tuple(c for c in CHECK_CODES if c not in ("duplicate", "length_outlier"))
"""Codes :func:`~cen.verify.checks.check_caption` can raise on one caption (the table-level
``duplicate`` and ``length_outlier`` need a whole caption set and are not scored on the fault set)."""


def read_fault_set(path: str | Path = FAULT_SET) -> pd.DataFrame:
    """The fault set as a table: ``id``, ``tile_id``, ``paradigm``, ``fault``, ``expected_flags``
    (list of check codes, empty for a correct caption), ``text``, ``region_counts`` ((6, 12) int64).
    Raises ``ValueError`` naming the line of a malformed record."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: fault set not found")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            counts = validate_counts(np.asarray(rec["region_counts"]), f"{path}:{n}")
            unknown = [c for c in rec["expected_flags"] if c not in PER_CAPTION_CODES]
            if unknown:
                raise ValueError(f"{path}:{n}: unknown expected flag {unknown[0]!r}")
            rows.append({"id": str(rec["id"]), "tile_id": str(rec["tile_id"]), "paradigm": rec["paradigm"],
                         "fault": rec["fault"], "expected_flags": sorted(rec["expected_flags"]), "text": rec["text"],
                         "region_counts": counts})
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a fault-set record ({exc})") from exc
    if not rows:
        raise ValueError(f"{path}: no records")
    return pd.DataFrame(rows)


@dataclass
class FaultSetResult:
    """Checks on the hand-written fault set."""

    cases: pd.DataFrame
    """One row per caption: ``id``, ``fault``, ``expected_flags``, ``found_flags``, ``missed``
    (expected, not found), ``false_flags`` (found, not expected), ``text``."""
    per_check: pd.DataFrame
    """Per check code: ``expected``, ``detected``, ``false_flags``, ``recall``, ``precision``."""

    @property
    def true_positives(self) -> int:
        return int(self.per_check["detected"].sum())

    @property
    def recall(self) -> float:
        """Expected flags the checks raised / all expected flags (over (caption, code) pairs)."""
        expected = int(self.per_check["expected"].sum())
        return self.true_positives / expected if expected else float("nan")

    @property
    def precision(self) -> float:
        """Raised flags that were expected / all raised flags (over (caption, code) pairs)."""
        raised = self.true_positives + int(self.per_check["false_flags"].sum())
        return self.true_positives / raised if raised else float("nan")

    def summary(self) -> dict[str, float | int]:
        correct = self.cases[self.cases["expected_flags"].str.len() == 0]
        faulty = self.cases[self.cases["expected_flags"].str.len() > 0]
        return {
            "n_captions": len(self.cases), "n_faulty": len(faulty), "n_correct": len(correct),
            "expected_flags": int(self.per_check["expected"].sum()), "detected": self.true_positives,
            "false_flags": int(self.per_check["false_flags"].sum()),
            "recall": round(self.recall, 4), "precision": round(self.precision, 4),
            "faulty_fully_detected": int((faulty["missed"].str.len() == 0).sum()),
            "correct_without_flags": int((correct["false_flags"].str.len() == 0).sum()),
        }


def evaluate_fault_set(cases: pd.DataFrame | None = None, config: CheckConfig = CheckConfig()) -> FaultSetResult:
    """Run :func:`~cen.verify.checks.check_caption` on every case of the fault set
    (:func:`read_fault_set` by default) and compare the codes raised with the expected ones."""
    cases = read_fault_set() if cases is None else cases
    rows = []
    for rec in cases.itertuples():
        found = sorted({f.code for f in check_caption(rec.text, rec.region_counts, rec.paradigm, config)})
        expected = list(rec.expected_flags)
        rows.append({"id": rec.id, "fault": rec.fault, "expected_flags": expected, "found_flags": found,
                     "missed": [c for c in expected if c not in found],
                     "false_flags": [c for c in found if c not in expected], "text": rec.text})
    table = pd.DataFrame(rows)
    per = []
    for code in PER_CAPTION_CODES:
        expected = int(table["expected_flags"].map(lambda e: code in e).sum())
        detected = int(table.apply(lambda r: code in r["expected_flags"] and code in r["found_flags"], axis=1).sum())
        false = int(table["false_flags"].map(lambda e: code in e).sum())
        if expected or false:
            per.append({"check": code, "expected": expected, "detected": detected, "false_flags": false,
                        "recall": detected / expected if expected else float("nan"),
                        "precision": detected / (detected + false) if detected + false else float("nan")})
    return FaultSetResult(table, pd.DataFrame(per, columns=["check", "expected", "detected", "false_flags",
                                                            "recall", "precision"]))
