"""Injected faults: realistic GPT-style errors planted in clean captions, to show the checks work.

Template captions are consistent by construction, so a demo run would show no findings. These
functions copy clean captions and plant one known fault each (the kinds the ChatEarthNet
authors and the prompts' constraints describe: cross-image phrasing, hedging words, colour
words, a lake that is not there, a class in the wrong quadrant, a wrong proportion word, a
truncated answer), then measure which the checks detect. The output is clearly labelled
``injected``; it never enters the verified dataset.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

from cen import landcover
from cen.verify import lexicon as lx
from cen.verify.checks import CheckConfig, check_caption, region_shares, validate_counts

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
