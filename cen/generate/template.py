"""The offline ``template`` captioner: readable, deterministic captions that are exact against the statistics.

Input is one tile's ``(6, 12)`` region counts (:func:`cen.stats.region_counts`: regions whole,
top left, top right, bottom left, bottom right, middle; ChatEarthNet indices 0-11) or its
``(H, W)`` label map. The caption is prose in the spirit of the release's GPT-3.5 constraints
(dominant class and where it lies, each part of the image in descending order of area, a
closing theme), written from one of several sentence plans chosen per tile:

* ``overview``: the composition of the tile, where the leading class leads and where the
  second one gathers, one sentence per part (two quadrants that agree are merged into a half:
  "In the northern half, ..."), the small classes and where they sit ("a small patch of
  developed area lies along the eastern edge"), a closing theme;
* ``parts``: close to the release's style, the five parts in order with Algorithm 1's size words
  ("a large portion", "an extra small fraction");
* ``classes``: class by class, with percentages, where each one is concentrated.

Every claim is true of the counts and is read back by :mod:`cen.verify.parse`: a class is named
only where it has pixels (at least :data:`MIN_PIXELS` in the tile), each amount word ("most of",
"about a third", "a small share", "59%") sits in a clause of its own with the class and region
it measures, whole-tile shares are of the labelled pixels (wording "of the labelled area" when
the tile has background pixels) and a part's shares of all its pixels, positions come from the quadrant counts ("along the eastern
edge": at least 85 % of the class's pixels in the eastern half, under a quarter in the middle),
"no water" only for classes with no pixel at all. No banned word, colour word or reference to
another image is used.

``attributes`` writes the ablation variants the ChatEarthNet authors leave for future work
(:data:`ATTRIBUTE_VARIANTS`): ``full``; ``no_size`` (no proportion or size words; classes
listed in class order, so the order does not rank them by area either); ``no_position`` (no
region phrases); ``classes_only`` (only the classes present, in class order).

The wording is drawn from a generator seeded by ``seed`` and the counts: identical input gives
an identical caption; tiles with different statistics get different first sentences.
"""

from __future__ import annotations

import hashlib
import random
from typing import TYPE_CHECKING, Sequence

import numpy as np

from cen.landcover import BOTTOM_LEFT as BL
from cen.landcover import BOTTOM_RIGHT as BR
from cen.landcover import MIDDLE as MID
from cen.landcover import N_INDICES, REGIONS, WHOLE, class_names

if TYPE_CHECKING:
    import pandas as pd
from cen.landcover import TOP_LEFT as TL
from cen.landcover import TOP_RIGHT as TR

TEMPLATE_CAPTIONER_VERSION = "template-2"
"""Version of this captioner's wording; stored as ``template_version`` of its captions."""

MIN_PIXELS = 20
"""A class is named (in the tile or a region) only with at least this many pixels (the release's threshold)."""

MENTION_SHARE = 0.05
"""Classes with at least this share of the labelled pixels get an amount of their own."""

ATTRIBUTE_VARIANTS = ("full", "no_size", "no_position", "classes_only")
"""Caption variants from the same statistics (the attribute ablation)."""

PLANS = ("overview", "parts", "classes", "portrait")
"""Sentence plans of the ``full`` variant (one is drawn per tile)."""

_QUADS = (TL, TR, BL, BR)
_NAMES = class_names("gpt35")
_SIZE = ((0.095, "extra small"), (0.195, "small"), (0.495, "medium"), (0.795, "large"), (1.01, "extra large"))

# noun forms per class: (text, plural)
_FORMS: dict[int, tuple[tuple[str, bool], ...]] = {
    1: (("water", False), ("open water", False), ("surface water", False)),
    2: (("developed area", False), ("built-up land", False), ("buildings", True), ("settlement", False)),
    3: (("trees", True), ("tree cover", False), ("forest", False), ("woodland", False)),
    4: (("shrubs", True), ("shrubland", False), ("scrub", False)),
    5: (("grass", False), ("grassland", False), ("open grassland", False)),
    6: (("cropland", False), ("crop fields", True), ("farmland", False)),
    7: (("bare land", False), ("bare ground", False), ("sparse vegetation", False)),
    8: (("snow and ice", True), ("snow", False)),
    9: (("wetland", False), ("marshland", False), ("herbaceous wetland", False)),
    10: (("mangroves", True), ("mangrove forest", False)),
    11: (("moss and lichen", True), ("moss", False)),
}
# the plain form a negation uses ("no water or cropland"): the parser negates class words only
_PLAIN = {1: "water", 2: "developed area", 3: "tree cover", 4: "shrubland", 5: "grassland", 6: "cropland",
          7: "bare land", 8: "snow", 9: "wetland", 10: "mangroves", 11: "moss"}
_THEMES: dict[int, tuple[str, ...]] = {
    1: ("a landscape shaped by water", "a scene of open water", "a waterside scene"),
    2: ("a built-up landscape", "an urban landscape", "a settled, built-up district", "an urban fabric"),
    3: ("a wooded landscape", "a forested landscape", "wooded terrain", "a landscape under tree cover",
        "a tree-covered landscape", "woodland country"),
    4: ("a shrubland landscape", "scrub country"),
    5: ("an open grassland landscape", "grassy open country", "a grassland scene", "pasture-like open terrain"),
    6: ("an agricultural landscape", "a landscape of cropland", "a cultivated landscape"),
    7: ("a barren landscape", "a landscape of bare ground"),
    8: ("a snow-covered landscape", "an icy landscape"),
    9: ("a wetland landscape", "a landscape of marshland"),
    10: ("a mangrove landscape", "a coast of mangrove forest"),
    11: ("a landscape of moss and lichen",),
}
_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven")

# amount phrases by share range [low, high): each parses (cen.verify.lexicon) to a range containing it
_AMOUNTS: tuple[tuple[float, float, tuple[str, ...]], ...] = (
    (0.90, 1.01, ("nearly all", "almost all", "virtually all")),
    (0.80, 1.01, ("an extra large share", "an extra large portion")),
    (0.70, 0.80, ("about three quarters", "roughly three quarters")),
    (0.60, 0.72, ("about two thirds", "roughly two thirds", "close to two thirds")),
    (0.50, 0.80, ("a large part", "a large share", "a large proportion")),
    (0.50, 0.60, ("just over half",)),
    (0.40, 0.50, ("just under half",)),
    (0.40, 0.60, ("about half", "roughly half", "around half", "close to half")),
    (0.34, 0.39, ("just over a third",)),
    (0.28, 0.39, ("about a third", "roughly a third")),
    (0.20, 0.50, ("a medium share", "a medium-sized portion", "a medium proportion")),
    (0.20, 0.30, ("about a quarter", "roughly a quarter", "around a quarter")),
    (0.08, 0.13, ("about a tenth", "roughly a tenth")),
    (0.10, 0.20, ("a small share", "a small part", "a small proportion")),
    (0.00, 0.10, ("a very small share", "an extra small fraction", "a minor share")),
)
_BUCKET_NOUNS = ("fraction", "part", "portion", "amount", "quantity", "share")

# region names (first: the region's own name, cen.landcover.REGIONS); cen.verify.lexicon.REGION_RE reads
# each as exactly these regions
_REGION_NAMES: dict[tuple[int, ...], tuple[str, ...]] = {
    (TL,): (REGIONS[TL], "upper left", "north-west corner", "top-left corner", "north-western quarter", "upper-left quarter"),
    (TR,): (REGIONS[TR], "upper right", "north-east corner", "top-right corner", "north-eastern quarter", "upper-right quarter"),
    (BL,): (REGIONS[BL], "lower left", "south-west corner", "bottom-left corner", "south-western quarter", "lower-left quarter"),
    (BR,): (REGIONS[BR], "lower right", "south-east corner", "bottom-right corner", "south-eastern quarter", "lower-right quarter"),
    (MID,): ("middle", "centre", "central part", "central area", "centre of the tile"),
    (TL, TR): ("northern half", "upper half", "top half", "northern part", "upper part"),
    (BL, BR): ("southern half", "lower half", "bottom half", "southern part", "lower part"),
    (TL, BL): ("western half", "left half", "western side", "western part", "left side"),
    (TR, BR): ("eastern half", "right half", "eastern side", "eastern part", "right side"),
}
_EDGES = {(TL, TR): ("northern", "top"), (BL, BR): ("southern", "bottom"), (TL, BL): ("western", "left"),
          (TR, BR): ("eastern", "right")}
_COMPASS = {TL: "north-west", TR: "north-east", BL: "south-west", BR: "south-east"}
_HALVES = ((TL, TR), (BL, BR), (TL, BL), (TR, BR))


def size_word(share: float) -> str:
    """The Algorithm-1 size word of a share 0-1 of a region's labelled pixels (buckets on round(share, 2))."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share {share} outside 0-1")
    for upper, word in _SIZE:
        if share < upper:
            return word
    return "extra large"  # pragma: no cover - share <= 1 always hits the last bucket


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(items: Sequence[str], word: str = "and") -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {word} {items[-1]}"


def _as_counts(labels_or_counts: np.ndarray) -> np.ndarray:
    """``(6, 12)`` int64 counts from counts or from an ``(H, W)`` label map."""
    arr = np.asarray(labels_or_counts)
    if arr.shape == (6, N_INDICES) and not (arr.dtype == np.uint8 and arr.max(initial=0) < N_INDICES):
        if not np.issubdtype(arr.dtype, np.number) or (arr < 0).any():
            raise ValueError("region counts must be non-negative numbers")
        return arr.astype(np.int64)
    if arr.ndim == 2:
        from cen.stats import region_counts

        return region_counts(arr)
    raise ValueError(
        f"template_caption takes (6, 12) region counts or an (H, W) label map, got shape {arr.shape}"
    )


class _Tile:
    """The counts of one tile and the wording choices drawn for it."""

    def __init__(self, counts: np.ndarray, rng: random.Random):
        self.counts = counts
        self.rng = rng
        self.totals = [int(r[1:].sum()) for r in counts]
        self.sizes = [int(r.sum()) for r in counts]
        self.present = self.ranked((WHOLE,))
        self.partial = int(counts[WHOLE, 0]) > 0

    def count(self, regions: Sequence[int], cls: int) -> int:
        return int(sum(self.counts[r, cls] for r in regions))

    def share(self, regions: Sequence[int], cls: int) -> float:
        """Whole-tile shares are of the labelled pixels (said "of the labelled area" on a partly
        labelled tile); a part's share is of all its pixels (cen.verify.checks' definition)."""
        total = sum(self.totals[r] if r == WHOLE else self.sizes[r] for r in regions)
        return self.count(regions, cls) / total if total else 0.0

    def ranked(self, regions: Sequence[int]) -> list[int]:
        """Classes with >= MIN_PIXELS pixels in the union of ``regions``, by count descending (ties: index)."""
        cls = [c for c in range(1, N_INDICES) if self.count(regions, c) >= MIN_PIXELS]
        return sorted(cls, key=lambda c: -self.count(regions, c))

    def pick(self, options: Sequence[str]) -> str:
        return self.rng.choice(list(options))

    def noun(self, cls: int) -> tuple[str, bool]:
        return self.rng.choice(_FORMS[cls])

    def whole(self) -> str:
        """The denominator of whole-tile shares (the labelled area when the tile has background)."""
        if self.partial:
            return self.pick(("the labelled area", "the labelled part of the image", "the mapped ground"))
        return self.pick(("the tile", "the image", "this tile", "the scene", "the picture", "the frame"))

    def amount(self, share: float, *, top: bool = False, bucket: bool = False) -> str:
        """An amount phrase true of ``share`` ("about a third"; with ``bucket`` the Algorithm-1 size word)."""
        if bucket:
            word = size_word(min(1.0, share))
            return f"{_article(word)} {word} {self.pick(_BUCKET_NOUNS)}"
        options = [p for lo, hi, phrases in _AMOUNTS if lo <= share < hi for p in phrases]
        if top and share >= 0.55:
            options += ["most", "the greater part"]
        return self.pick(options)

    def region(self, regions: Sequence[int]) -> str:
        return self.pick(_REGION_NAMES[tuple(regions)])


def _v(verb: str, plural: bool) -> str:
    """``verb`` (plural form, e.g. "take up") agreeing with a plural or singular subject ("takes up")."""
    if plural:
        return verb
    head, _, rest = verb.partition(" ")
    if head in ("are", "have"):
        head = {"are": "is", "have": "has"}[head]
    elif head.endswith(("s", "sh", "ch", "x", "z")):
        head += "es"
    elif head.endswith("y") and head[-2:-1] not in "aeiou":
        head = head[:-1] + "ies"
    else:
        head += "s"
    return f"{head} {rest}".rstrip()


def _pct(share: float) -> str:
    return f"{max(1, int(round(share * 100)))}%"


def _location(t: _Tile, cls: int) -> tuple[str, tuple[int, ...]]:
    """Where a class's pixels are: ``corner``, ``edge``, ``half``, ``centre``, ``corners`` or ``spread``."""
    q = np.array([t.count((r,), cls) for r in _QUADS], dtype=float)
    total = q.sum()
    if total == 0:
        return "spread", ()
    frac = q / total
    mid = t.count((MID,), cls) / total
    best = int(frac.argmax())
    if frac[best] >= 0.85:
        return "corner", (_QUADS[best],)
    halves = [(sum(frac[_QUADS.index(r)] for r in h), h) for h in _HALVES]
    share, half = max(halves, key=lambda x: x[0])
    if share >= 0.85:
        return ("edge" if mid < 0.25 else "half"), half
    if mid >= 0.7:
        return "centre", (MID,)
    held = tuple(r for r, f in zip(_QUADS, frac) if f >= 0.15)
    if len(held) in (2, 3):
        return "corners", held
    return "spread", ()


def _where(t: _Tile, kind: str, regions: tuple[int, ...]) -> str:
    """A position phrase for a :func:`_location` result; it names its regions (or the whole image)."""
    if kind == "corner":
        return t.pick(("in the ", "within the ")) + t.region(regions)
    if kind == "edge":
        adj = t.pick(_EDGES[regions])
        return t.pick((f"along the {adj} edge", f"near the {adj} edge", f"close to the {adj} edge"))
    if kind == "half":
        return t.pick(("in the ", "across the ", "over the ")) + t.region(regions)
    if kind == "centre":
        return t.pick(("near the centre", "in the middle", "around the central part", "close to the centre"))
    if kind == "corners":
        return "in the " + _join([_COMPASS[r] for r in regions]) + " corners"
    return t.pick(("throughout the image", "across the whole scene", "all over the image", "throughout the scene"))


def _led_name(t: _Tile, led: tuple[int, ...]) -> str:
    return t.region(led) if led in _REGION_NAMES else _join([_COMPASS[q] for q in led]) + " corners"


def _leaders(t: _Tile) -> dict[int, int | None]:
    return {q: (t.ranked((q,)) or [None])[0] for q in _QUADS}


# ----------------------------------------------------------------------------------------------
# sentences


def _composition(t: _Tile, *, percent: bool | None, minors_tail: bool) -> str:
    """Whole-tile amounts of the classes >= MENTION_SHARE (one clause each), then the smaller ones."""
    labelled = t.totals[WHOLE]
    major = [c for c in t.present if t.count((WHOLE,), c) / labelled >= MENTION_SHARE] or t.present[:1]
    minor = [c for c in t.present if c not in major]
    whole = t.whole()
    parts = []
    lead, plural = t.noun(major[0])
    s0 = t.share((WHOLE,), major[0])
    style = t.pick(("percent", "most", "verb", "verb")) if percent is None else ("percent" if percent else "verb")
    if style == "most" and s0 < 0.55:
        style = "verb"
    if style == "percent":
        intro = t.pick(("By area, ", "In terms of area, ", "Measured by area, ", "Counted pixel by pixel, ",
                        "As a share of its pixels, "))
        parts.append(f"{intro}{whole} is {_pct(s0)} {lead}")
        parts += [f"{_pct(t.share((WHOLE,), c))} {t.noun(c)[0]}" for c in major[1:]]
    elif style == "most":
        head = t.pick(("most", "the bulk", "the greater part", "the majority", t.amount(s0)))
        parts.append(f"{_cap(head)} of {whole} is {lead}")
        for k, c in enumerate(major[1:]):
            n, pl = t.noun(c)
            verb = f" {_v(t.pick(('make up', 'take up', 'account for', 'claim')), pl)}" if k == 0 else ""
            parts.append(f"{n}{verb} {t.amount(t.share((WHOLE,), c))}")
    else:
        verb = _v(t.pick(("cover", "occupy", "take up", "spread over", "account for", "extend over", "blanket")), plural)
        parts.append(f"{_cap(lead)} {verb} {t.amount(s0, top=True)} of {whole}")
        parts += [f"{t.noun(c)[0]} {t.amount(t.share((WHOLE,), c))}" for c in major[1:]]
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + ", and " + parts[-1]
    if minors_tail and minor:
        forms = [t.noun(c) for c in minor]
        names = [n for n, _ in forms]
        text += t.pick(("; smaller amounts of {} make up the rest", "; the rest is {}",
                        ", with a little {} as well", "; what remains is shared by {}",
                        "; {} " + _v("fill", len(forms) > 1 or forms[0][1]) + " the remaining gaps",
                        "; beyond " + ("these" if len(parts) > 1 else "that") + ", there is only a little {}",
                        "; the remainder goes to {}")).format(_join(names))
    return _cap(text) + "."


def _layout(t: _Tile) -> str | None:
    """Where the leading class leads, where the others take over, where the second one gathers."""
    lead_cls = t.present[0]
    leaders = _leaders(t)
    led = tuple(q for q in _QUADS if leaders[q] == lead_cls)
    name, plural = t.noun(lead_cls)
    clauses = []
    if len(led) == 4:
        clauses.append(t.pick((f"{_cap(name)} {_v('lead', plural)} in every quadrant",
                               f"{_cap(name)} {_v('rank', plural)} first in all four quarters",
                               f"{_cap(name)} {_v('come', plural)} out on top in each quarter of the tile",
                               f"{_cap(name)} {_v('are', plural)} ahead in every quadrant")))
    elif led:
        verb = t.pick(("lead", "prevail"))
        clauses.append(f"{_cap(name)} {_v(verb, plural)} in the {_led_name(t, led)}")
        for q in _QUADS:
            other = leaders[q]
            if other is not None and q not in led:
                n, pl = t.noun(other)
                verb = t.pick(("take over", "lead", "come first", "win out", "hold sway"))
                clauses.append(f"{'while ' if len(clauses) == 1 else ''}{n} {_v(verb, pl)} in the {t.region((q,))}")
    taken = {leaders[q] for q in _QUADS if q not in led}
    labelled = t.totals[WHOLE]
    for c in [c for c in t.present[1:2] if c not in taken and t.count((WHOLE,), c) / labelled >= MENTION_SHARE]:
        kind, regs = _location(t, c)
        n, pl = t.noun(c)
        verbs = ("gather", "lie", "collect", "sit", "cluster") if kind != "spread" else ("occur", "turn up", "show up")
        clauses.append(f"{'and ' if clauses else ''}{n} {_v(t.pick(verbs), pl)} {_where(t, kind, regs)}")
    if not clauses:
        return None
    return _cap(", ".join(clauses)) + "."


def _groups(t: _Tile, merge: bool, key) -> list[tuple[int, ...]]:
    """The four quadrants, adjacent pairs merged into halves when ``key`` gives them the same value."""
    if not merge:
        return [(q,) for q in _QUADS]
    same = {h: key(h[0]) is not None and key(h[0]) == key(h[1]) for h in _HALVES}
    for pair in (((TL, TR), (BL, BR)), ((TL, BL), (TR, BR))):
        if same[pair[0]] and same[pair[1]]:
            return list(pair)
    for h in _HALVES:
        if same[h]:
            rest = [(q,) for q in _QUADS if q not in h]
            return sorted([h, *rest], key=lambda g: _QUADS.index(g[0]))
    return [(q,) for q in _QUADS]


def _agree_key(t: _Tile):
    """Two quadrants agree when the same class leads both with shares in the same 15-point band."""
    def key(q: int):
        ranked = t.ranked((q,))
        return None if not ranked else (ranked[0], int(t.share((q,), ranked[0]) / 0.15))
    return key


def _part_sentence(t: _Tile, regions: tuple[int, ...], *, bucket: bool) -> str:
    """One sentence about a region: its top three classes, each amount in a clause of its own."""
    ranked = t.ranked(regions)[:3]
    name = t.region(regions)
    if sum(t.totals[r] for r in regions) == 0:
        return f"The {name} holds no labelled land cover."
    if not ranked:
        return f"The {name} holds only a few scattered pixels of land cover."
    shares = [t.share(regions, c) for c in ranked]
    nouns = [t.noun(c) for c in ranked]
    if bucket:
        intro = t.pick(("In the {r}, ", "Looking at the {r}, ", "Within the {r}, ", "Across the {r}, ",
                        "Turning to the {r}, "))
        verb = _v(t.pick(("cover", "occupy", "take up")), nouns[0][1])
        out = intro.format(r=name) + f"{nouns[0][0]} {verb} {t.amount(shares[0], bucket=True)}"
        if len(ranked) > 1:
            out += f", followed by {nouns[1][0]} with {t.amount(shares[1], bucket=True)}"
        if len(ranked) > 2:
            out += f", and {nouns[2][0]} {_v('add', nouns[2][1])} {t.amount(shares[2], bucket=True)}"
        return out + "."
    style = t.pick(("in", "is", "fill", "dominate"))
    if style == "is" and shares[0] >= 0.4:
        adverb = t.pick(("mostly", "mainly", "largely", "chiefly", "predominantly", "primarily"))
        out = f"The {name} is {adverb} {nouns[0][0]}"
    elif style == "dominate" and shares[0] >= 0.5:
        verb = t.pick(("dominate", "prevail in"))
        verb = _v(verb.split()[0], nouns[0][1]) + verb[len(verb.split()[0]):]
        out = f"{_cap(nouns[0][0])} {verb} the {name}"
    elif style == "fill":
        verb = _v(t.pick(("fill", "cover", "blanket", "take up", "claim")), nouns[0][1])
        out = f"{_cap(nouns[0][0])} {verb} {t.amount(shares[0], top=True)} of the {name}"
    else:
        intro = t.pick(("In the {r}, ", "Within the {r}, ", "Across the {r}, ", "Over in the {r}, ", "Turning to the {r}, ",
                        "Moving to the {r}, ", "As for the {r}, ", "Towards the {r}, "))
        verb = _v(t.pick(("cover", "occupy", "take up", "spread over")), nouns[0][1])
        out = intro.format(r=name) + f"{nouns[0][0]} {verb} {t.amount(shares[0], top=True)} of the ground"
    for k in range(1, len(ranked)):
        if k == 1:
            verb = t.pick(("covering", "taking up", "making up", "accounting for", "occupying", "filling"))
            out += f", with {nouns[k][0]} {verb} {t.amount(shares[k])}"
        else:
            out += t.pick((", and {n} {a}", ", while {n} {h} {a}", ", leaving {a} to {n}")).format(
                n=nouns[k][0], h=_v("hold", nouns[k][1]), a=t.amount(shares[k]))
    return out + "."


def _minor_sentences(t: _Tile, classes: Sequence[int], *, positions: bool = True, size: bool = True) -> list[str]:
    """The small classes, grouped by position (a corner, an edge, the centre …), one clause per group."""
    groups: dict[tuple[str, tuple[int, ...]], list[int]] = {}
    for c in classes:
        groups.setdefault(_location(t, c) if positions else ("spread", ()), []).append(c)
    clauses = []
    for (kind, regs), members in groups.items():
        names = [t.noun(c) for c in members]
        share = max(t.share((WHOLE,), c) for c in members)
        single = kind in ("corner", "edge", "centre") and len(members) == 1
        if not size:
            qty = ""
        elif share < 0.005:
            qty = t.pick(("specks of ", "traces of ", "tiny patches of ", "scattered bits of ", "a sprinkling of ",
                          "flecks of ", "a smattering of "))
        elif single:
            qty = t.pick(("a small patch of ", "a narrow strip of ", "a thin band of ", "a small cluster of ",
                          "a ribbon of ", "a lone patch of "))
        else:
            qty = t.pick(("small patches of ", "a few patches of ", "pockets of ", "isolated patches of ",
                          "stray patches of "))
        plural = (not qty.startswith("a ") or qty.startswith("a few")) if qty else (len(names) > 1 or names[0][1])
        if kind == "edge" and t.rng.random() < 0.5:
            adj = t.pick(_EDGES[regs])
            verb = _v(t.pick(("line", "hug", "fringe", "border", "cling to")), plural)
            tail = f"{verb} the {adj} edge"
        elif kind in ("corner", "half") and plural and positions and t.rng.random() < 0.4:
            tail = f"{_v(t.pick(('dot', 'speckle', 'pepper')), plural)} the {t.region(regs)}"
        else:
            verbs = ("lie", "sit", "occur", "show up", "turn up", "nestle", "are found") if kind != "edge" \
                else ("run", "lie", "sit", "stretch")
            tail = f"{_v(t.pick(verbs), plural)} " + (_where(t, kind, regs) if positions
                                                      else t.pick(("in the image", "in the scene", "here and there in the image")))
        clauses.append(f"{qty}{_join([n for n, _ in names])} {tail}")
    out = []
    for k in range(0, len(clauses), 3):
        chunk = clauses[k:k + 3]
        out.append(_cap(", ".join(chunk[:-1]) + (", and " if len(chunk) > 1 else "") + chunk[-1]) + ".")
    return out


def _absent(t: _Tile) -> str | None:
    """Salient classes with no pixel at all (water, developed area, cropland, tree cover)."""
    gone = [c for c in (1, 2, 6, 3) if t.count((WHOLE,), c) == 0]
    if not gone or t.rng.random() < 0.4:
        return None
    names = _join([_PLAIN[c] for c in gone], "or")
    options = ["There is no {} in this tile.", "The tile holds no {}.", "No {} is present.", "The image contains no {}."]
    if len(gone) == 2:
        options.append(f"Neither {_PLAIN[gone[0]]} nor {_PLAIN[gone[1]]} is present.")
    return t.pick(options).format(names)


def _closing(t: _Tile) -> str:
    lead = t.present[0]
    labelled = t.totals[WHOLE]
    others = [c for c in t.present[1:] if t.count((WHOLE,), c) / labelled >= MENTION_SHARE][:3]
    if t.share((WHOLE,), lead) >= 0.4 or not others:
        theme = t.pick(_THEMES[lead])
    else:
        theme = t.pick(("a mixed landscape of {} and {}", "a mosaic of {} and {}", "a patchwork of {} and {}",
                        "a blend of {} and {}", "a varied mix of {} and {}", "an interplay of {} and {}")).format(
            t.noun(lead)[0], t.noun(others[0])[0])
        others = others[1:]
    opener = t.pick(("Overall, the image depicts {}", "Overall, the scene is {}", "Taken together, the image shows {}",
                     "Altogether, the scene is {}", "In short, the image shows {}", "All in all, this is {}",
                     "The overall theme of the image is {}", "To sum up, the tile is {}", "In summary, the scene is {}",
                     "Above all, the picture is {}", "Summing up, the scene is {}"))
    text = opener.format(theme)
    if others:
        text += t.pick((" with {}", ", interspersed with {}", ", broken up by {}", ", alongside {}",
                        ", shared with {}", ", dotted with {}", ", set against {}", ", complemented by {}")).format(_join([t.noun(c)[0] for c in others]))
    return text + "."


def _contrast(t: _Tile) -> str | None:
    """How the tile divides: two halves led by different classes, or four quarters that look alike."""
    for a, b in (((TL, TR), (BL, BR)), ((TL, BL), (TR, BR))):
        la, lb = (t.ranked(a) or [None])[0], (t.ranked(b) or [None])[0]
        if la is not None and lb is not None and la != lb and _margin(t, a) >= 0.1 and _margin(t, b) >= 0.1:
            (na, pa), nb = t.noun(la), t.noun(lb)[0]
            return t.pick(("The tile is divided between {a} in the {ra} and {b} in the {rb}.",
                           "Broadly, {a} {h} the {ra} and {b} the {rb}.",
                           "The {ra} belongs to {a}, the {rb} to {b}.",
                           "A contrast runs through the image: {a} in the {ra}, {b} in the {rb}.",
                           "The image splits into {a} across the {ra} and {b} across the {rb}.")).format(
                a=na, b=nb, ra=t.region(a), rb=t.region(b), h=_v(t.pick(("hold", "claim", "own")), pa))
    key = _agree_key(t)
    if len({key(q) for q in _QUADS}) == 1 and key(TL) is not None:
        return t.pick(("The four quarters look much alike.", "The land cover is spread evenly over the four quarters.",
                       "Each quarter of the tile shows a similar make-up.",
                       "The mix barely varies from one quarter to the next."))
    return None


def _margin(t: _Tile, regions: tuple[int, ...]) -> float:
    """How far the leading class of ``regions`` is ahead of the second (share points)."""
    shares = sorted((t.share(regions, c) for c in range(1, N_INDICES)), reverse=True)
    return shares[0] - shares[1]


def _portrait(t: _Tile) -> list[str]:
    """A GPT-4V-like portrait: the theme first, then the composition, each class's place, the small ones."""
    lead = t.present[0]
    theme = t.pick(_THEMES[lead]) if t.share((WHOLE,), lead) >= 0.4 else "a mixed landscape"
    out = [t.pick(("This image is characterized by {}.", "The image portrays {}.", "What the image shows is {}.",
                   "The tile captures {}.", "At first glance, the image presents {}.")).format(theme),
           _composition(t, percent=None, minors_tail=True)]
    out += [x for x in (_contrast(t),) if x]
    labelled = t.totals[WHOLE]
    for c in [c for c in t.present[1:] if t.count((WHOLE,), c) / labelled >= MENTION_SHARE][:3]:
        kind, regs = _location(t, c)
        n, pl = t.noun(c)
        out.append(t.pick(("{n} {f} a notable presence {w}.", "{n} {b} most prominent {w}.",
                           "{n} {c} {w}.", "{n} {m} its strongest showing {w}.")).format(
            n=_cap(n), f=_v("form", pl), b=_v("are", pl), c=_v(t.pick(("concentrate", "gather")), pl),
            m=_v("make", pl),
            w=_where(t, kind, regs)))
    out += _minor_sentences(t, [c for c in t.present if t.share((WHOLE,), c) < MENTION_SHARE])
    out.append(f"In total, {_NUMBERS[len(t.present)]} land cover "
               f"{'types are' if len(t.present) > 1 else 'type is'} present.")
    return out


def _opening_count(t: _Tile) -> str:
    n = len(t.present)
    names = [_NAMES[c] for c in t.present]
    if n == 1:
        return f"The image shows a single land cover type, {names[0]}."
    return t.pick(("The image shows {n} land cover types, from most to least: {l}.",
                   "{N} land cover types make up the image, in order of area: {l}.",
                   "Ranked by area, the {n} land cover types of this tile are {l}.",
                   "This tile holds {n} land cover types; by area they are {l}.",
                   "Counting every class of at least twenty pixels, the image holds {n}: {l}.",
                   "The image brings together {n} land cover types, largest first: {l}.")).format(
        n=_NUMBERS[n], N=_cap(_NUMBERS[n]), l=_join(names))


def _dominant(t: _Tile) -> str:
    lead = t.present[0]
    share = t.share((WHOLE,), lead)
    name, plural = t.noun(lead)
    rank = t.pick(("the dominant land cover", "the dominant class", "the principal land cover")) if share >= 0.4 \
        else t.pick(("the most widespread land cover", "the largest class", "the most extensive class"))
    led = [q for q in _QUADS if _leaders(t)[q] == lead]
    where = ""
    if len(led) == 4:
        where = f", and {_v('lead', plural)} in every quadrant"
    elif led:
        where = f", leading in the {_join([t.region((q,)) for q in led])}"
    be = "are" if plural else "is"
    return (f"{_cap(name)} {be} {rank}, covering {t.amount(share, bucket=True)} "
            f"of {t.whole()}{where}.")


# ----------------------------------------------------------------------------------------------
# plans and variants


def _full(t: _Tile) -> list[str]:
    plan = t.pick(PLANS)
    minor = [c for c in t.present if t.share((WHOLE,), c) < MENTION_SHARE]
    if plan == "parts":
        out = [_opening_count(t), _dominant(t)]
        out += [_part_sentence(t, g, bucket=True) for g in _groups(t, True, _agree_key(t))]
        out.append(_part_sentence(t, (MID,), bucket=True))
        out.append(_closing(t))
        return out
    if plan == "classes":
        out = [_composition(t, percent=True, minors_tail=True)]
        for c in [c for c in t.present if c not in minor][:4]:
            kind, regs = _location(t, c)
            n, pl = t.noun(c)
            led = tuple(q for q in _QUADS if (t.ranked((q,)) or [None])[0] == c)
            verb = _v(t.pick(("lie", "gather", "sit", "cluster")), pl) if kind != "spread" else _v("occur", pl)
            s = f"{_cap(n)} {verb} {_where(t, kind, regs)}"
            if led and led != regs:
                n2, pl2 = t.noun(c)
                where = "every quadrant" if len(led) == 4 else "the " + _led_name(t, led)
                s += f", and {n2} {_v('lead', pl2)} in {where}"
            out.append(s + ".")
        out += _minor_sentences(t, minor)
        out += [x for x in (_absent(t), _closing(t)) if x]
        return out
    if plan == "portrait":
        return _portrait(t)
    out = [_composition(t, percent=None, minors_tail=True)]
    out += [x for x in (_layout(t),) if x]
    if t.rng.random() < 0.5:
        out += [x for x in (_contrast(t),) if x]
    out += [_part_sentence(t, g, bucket=False) for g in _groups(t, True, _agree_key(t))]
    if t.rng.random() < 0.5:
        out.append(_part_sentence(t, (MID,), bucket=False))
    out += _minor_sentences(t, minor)
    out += [x for x in (_absent(t), _closing(t)) if x]
    return out


def _no_size(t: _Tile) -> list[str]:
    order = sorted(t.present)
    out = [t.pick(("This tile contains {}.", "The land cover types present are {}.",
                   "The image holds {}.")).format(_join([_PLAIN[c] for c in order]))]
    sets = lambda q: tuple(sorted(t.ranked((q,)))) or None  # noqa: E731 - small key function
    for g in _groups(t, True, sets):
        present = sorted(t.ranked(g))
        name = t.region(g)
        if not present:
            out.append(f"The {name} holds no class with more than a few pixels.")
            continue
        out.append(t.pick(("In the {r} there is {l}.", "The {r} holds {l}.", "{l} make up the {r}.")).format(
            r=name, l=_join([_PLAIN[c] for c in present])))
        out[-1] = _cap(out[-1])
    mid = sorted(t.ranked((MID,)))
    if mid:
        out.append(f"The {t.region((MID,))} holds {_join([_PLAIN[c] for c in mid])}.")
    out += [x for x in (_absent(t),) if x]
    return out


def _no_position(t: _Tile) -> list[str]:
    minor = [c for c in t.present if t.share((WHOLE,), c) < MENTION_SHARE]
    out = [_composition(t, percent=None, minors_tail=False)]
    out += _minor_sentences(t, minor, positions=False)
    out += [x for x in (_absent(t), _closing(t)) if x]
    return out


def _classes_only(t: _Tile) -> list[str]:
    names = _join([_PLAIN[c] for c in sorted(t.present)])
    return [t.pick(("This tile contains {}.", "The land cover types present are {}.", "The image holds {}.")).format(names)]


ATTRIBUTES_TEMPLATE = "cen-gpt35-attributes-v1"
"""Prompt template (``cen/prompts/``) that asks an LLM for a caption from :func:`attribute_context`."""


def attribute_context(counts: np.ndarray, attributes: str) -> str | None:
    """The statistics context of one tile for :data:`ATTRIBUTES_TEMPLATE`, carrying only the
    attributes of a variant; ``None`` for ``full`` (use the release's ``gpt35_context``).

    ``no_size``: the classes (>= :data:`MIN_PIXELS`) in class order, then each part's classes in
    class order. ``no_position``: the classes from most to least with Algorithm 1's size word of
    their share of the tile. ``classes_only``: the classes in class order.
    """
    if attributes not in ATTRIBUTE_VARIANTS:
        raise ValueError(f"unknown attributes variant {attributes!r}; expected one of {', '.join(ATTRIBUTE_VARIANTS)}")
    if attributes == "full":
        return None
    t = _Tile(_as_counts(counts), random.Random(0))
    if attributes == "no_position":
        listed = "".join(f"{_NAMES[c]} ({size_word(min(1.0, t.share((WHOLE,), c)))}); " for c in t.present)
        return f"The overall land cover distributions from most to least are: {listed}\n"
    classes = "".join(f"{_NAMES[c]}; " for c in sorted(t.present))
    text = f"The land cover types present, in class order, are: {classes}\n"
    if attributes == "no_size":
        for r in (TL, TR, BL, BR, MID):
            names = [_NAMES[c] for c in sorted(t.ranked((r,)))]
            text += f"The {REGIONS[r]} contains: {', '.join(names) if names else 'no class of 20 pixels or more'}.\n"
    return text


def attribute_contexts(stats: "pd.DataFrame", attributes: str) -> "pd.DataFrame":
    """A copy of a stats table whose ``gpt35_context`` holds :func:`attribute_context` of each
    tile (unchanged for ``full``), for building :data:`ATTRIBUTES_TEMPLATE` requests."""
    from cen.stats import counts_from_table

    if attributes not in ATTRIBUTE_VARIANTS:
        raise ValueError(f"unknown attributes variant {attributes!r}; expected one of {', '.join(ATTRIBUTE_VARIANTS)}")
    out = stats.copy()
    if attributes != "full":
        out["gpt35_context"] = [attribute_context(c, attributes) for c in counts_from_table(stats)]
    return out


_VARIANTS = {"full": _full, "no_size": _no_size, "no_position": _no_position, "classes_only": _classes_only}


def caption_from_counts(counts: np.ndarray, *, seed: int = 0, attributes: str = "full") -> str:
    """Template caption of one tile from its ``(6, 12)`` region counts (see module docstring).

    ``attributes``: one of :data:`ATTRIBUTE_VARIANTS`.
    """
    if attributes not in _VARIANTS:
        raise ValueError(f"unknown attributes variant {attributes!r}; expected one of {', '.join(ATTRIBUTE_VARIANTS)}")
    counts = _as_counts(counts)
    if counts.shape != (6, N_INDICES):
        raise ValueError(f"expected (6, 12) region counts, got shape {counts.shape}")
    digest = hashlib.sha256(counts.astype("<i8").tobytes()).hexdigest()[:16]
    t = _Tile(counts, random.Random(f"{seed}:{attributes}:{digest}"))
    if t.totals[WHOLE] == 0:
        return "The image holds no labelled land cover in any of its parts."
    if not t.present:
        top = max(range(1, N_INDICES), key=lambda c: (int(counts[WHOLE, c]), -c))
        return (f"The image holds only a few pixels of {_PLAIN[top]}, too few to describe further."
                if attributes != "classes_only" else f"The image holds only a few pixels of {_PLAIN[top]}.")
    return " ".join(_VARIANTS[attributes](t))


def template_caption(labels_or_region_counts: np.ndarray, *, seed: int = 0, attributes: str = "full") -> str:
    """Deterministic caption of one tile from its ``(H, W)`` label map (ChatEarthNet indices)
    or its ``(6, 12)`` region counts (``cen.stats.region_counts``).

    A ``(6, 12)`` ``uint8`` array with values below 12 is read as a label map; pass counts as
    an integer type wider than ``uint8`` (``region_counts`` returns ``int64``).
    """
    return caption_from_counts(_as_counts(labels_or_region_counts), seed=seed, attributes=attributes)
