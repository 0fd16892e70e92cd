"""Wording tables of the offline ``template`` captioner (:mod:`cen.generate.template`).

What the captioner may say and when: the naming threshold (:data:`MIN_PIXELS`), the noun forms,
plain negation forms and closing themes of each class, the amount phrases by share range (each
read back by :mod:`cen.verify.lexicon` as a range containing the share), Algorithm 1's size
words, the region names, edges and compass corners, and the small word helpers (articles,
capitals, lists, verb agreement, percentages). No choice is drawn here: the sentence builders
(:mod:`cen.generate.template_sentences`) pick among these with the tile's seeded generator.
"""

from __future__ import annotations

from typing import Sequence

from cen.landcover import BOTTOM_LEFT as BL
from cen.landcover import BOTTOM_RIGHT as BR
from cen.landcover import MIDDLE as MID
from cen.landcover import REGIONS, class_names
from cen.landcover import TOP_LEFT as TL
from cen.landcover import TOP_RIGHT as TR

MIN_PIXELS = 20
"""A class is named (in the tile or a region) only with at least this many pixels (the release's threshold)."""

MENTION_SHARE = 0.05
"""Classes with at least this share of the labelled pixels get an amount of their own."""


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

