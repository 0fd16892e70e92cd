"""Word lists the caption checks use: class synonyms, regions, banned words, colours, proportions.

Everything here is data plus the compiled regular expressions built from it; the parsing that
uses them lives in :mod:`cen.verify.parse`.
"""

from __future__ import annotations

import functools
import re

from cen.landcover import BOTTOM_LEFT, BOTTOM_RIGHT, CLASS_SYNONYMS, MIDDLE, REGIONS, TOP_LEFT, TOP_RIGHT, WHOLE

# REGIONS (region order of a ``(6, 12)`` region-count array) and CLASS_SYNONYMS (ChatEarthNet
# index -> words a caption may use for that class; a space also matches a hyphen or several
# spaces; the regex tries longer first) are defined once, in cen.landcover.

_WORD_TO_CLASS: dict[str, int] = {}
for _idx, _words in CLASS_SYNONYMS.items():
    for _w in _words:
        if _w in _WORD_TO_CLASS:
            raise AssertionError(f"synonym {_w!r} listed for two classes")
        _WORD_TO_CLASS[_w] = _idx


def _phrase_pattern(words: list[str]) -> str:
    """Alternation of phrases, longest first, spaces matching runs of spaces or a hyphen."""
    parts = sorted(set(words), key=len, reverse=True)
    return "|".join(r"[\s-]+".join(re.escape(t) for t in p.split()) for p in parts)


CLASS_RE = re.compile(r"\b(?:" + _phrase_pattern(list(_WORD_TO_CLASS)) + r")\b", re.IGNORECASE)


def class_of(phrase: str) -> int:
    """ChatEarthNet index of a matched class phrase (any case, hyphens or spaces)."""
    return _WORD_TO_CLASS[" ".join(re.split(r"[\s-]+", phrase.lower()))]


# Region phrases -> the regions they name. "top"/"left" alone name two quadrants.
_REGION_WORDS: list[tuple[str, tuple[int, ...]]] = [
    (r"(?:top|upper)[\s-]*left|north[\s-]*west(?:ern)?", (TOP_LEFT,)),
    (r"(?:top|upper)[\s-]*right|north[\s-]*east(?:ern)?", (TOP_RIGHT,)),
    (r"(?:bottom|lower)[\s-]*left|south[\s-]*west(?:ern)?", (BOTTOM_LEFT,)),
    (r"(?:bottom|lower)[\s-]*right|south[\s-]*east(?:ern)?", (BOTTOM_RIGHT,)),
    (r"middle|cent(?:er|re|ral)", (MIDDLE,)),
    (r"(?:top|upper|northern)\s+(?:half|part|portion|section|side|edge|area|region|areas|parts)", (TOP_LEFT, TOP_RIGHT)),
    (r"(?:bottom|lower|southern)\s+(?:half|part|portion|section|side|edge|area|region|areas|parts)", (BOTTOM_LEFT, BOTTOM_RIGHT)),
    (r"(?:left|western)\s+(?:half|part|portion|section|side|edge|area|region|areas|parts)", (TOP_LEFT, BOTTOM_LEFT)),
    (r"(?:right|eastern)\s+(?:half|part|portion|section|side|edge|area|region|areas|parts)", (TOP_RIGHT, BOTTOM_RIGHT)),
]
REGION_RE = re.compile("|".join(f"(?P<r{i}>\\b(?:{p})\\b)" for i, (p, _) in enumerate(_REGION_WORDS)), re.IGNORECASE)
REGION_GROUPS: dict[str, tuple[int, ...]] = {f"r{i}": regs for i, (_, regs) in enumerate(_REGION_WORDS)}

WHOLE_IMAGE_RE = re.compile(
    r"\b(?:overall|whole|entire|entirety|throughout|the image|this image|the scene|the landscape|elsewhere|"
    r"remaining|rest\s+of|other\s+(?:quadrants|parts|areas|regions|sections|corners))\b", re.IGNORECASE
)
"""A clause containing one of these speaks about the whole image (or regions it does not name),
not about the region inherited from the previous clause."""

# Negation before a class mention: a negator, optional filler ("any", "signs of"), then only a
# list of other class words ("no water, crops or trees") up to the mention.
_CLASS_ALT = _phrase_pattern(list(_WORD_TO_CLASS))
NEGATION_BEFORE_RE = re.compile(
    r"\b(?:no|not|without|absence\s+of|absent|lacks?|lacking(?:\s+in)?|lack\s+of|devoid\s+of|free\s+of|nor|"
    r"neither|none\s+of|zero)"
    r"(?:\s+(?:any|visible|notable|significant|signs?\s+of|presence\s+of|traces?\s+of|evidence\s+of|the|a|an))*"
    r"(?:\s+(?:" + _CLASS_ALT + r")(?:\s+(?:areas?|cover|land|zones?|regions?))?\s*(?:,|\bor\b|\band\b|\bnor\b))*"
    r"\s*$",
    re.IGNORECASE,
)
NEGATOR_HINT_RE = re.compile(
    r"\b(?:no|not|without|absence|absent|lacks?|lacking|devoid|free|nor|neither|none|zero|missing)\b", re.IGNORECASE
)
"""Cheap pre-test: a sentence without any of these words has no negated mention."""
NEGATION_AFTER_RE = re.compile(
    r"^(?:\s+(?:areas?|cover|land|zones?|regions?))?\s+(?:is|are|was|were)\s+(?:entirely\s+|completely\s+|notably\s+)?"
    r"(?:absent|missing|not\s+present|not\s+found|not\s+observed|not\s+visible|lacking)",
    re.IGNORECASE,
)

# Banned words of the two prompts and their close variants: pattern -> the banned root.
BANNED_COMMON = ("possibly", "likely", "perhaps", "appear", "change", "transition", "dynamic")
BANNED_BY_PARADIGM: dict[str, tuple[str, ...]] = {
    "gpt35": BANNED_COMMON + ("context", "segmentation"),
    "gpt4v": BANNED_COMMON + ("color dictionary",),
}
BANNED_VARIANTS: dict[str, tuple[str, ...]] = {
    "possibly": ("possibly", "possible", "possibility", "possibilities", "maybe", "might", "could",
                 "potentially", "potential", "presumably", "probably", "probable", "conceivably"),
    "likely": ("likely", "unlikely", "likelihood"),
    "perhaps": ("perhaps",),
    "appear": ("appear", "appears", "appeared", "appearing", "appearance", "apparent", "apparently",
               "seem", "seems", "seemed", "seemingly", "suggest", "suggests", "suggesting", "suggestive",
               "indicative", "indicating", "indicates"),
    "change": ("change", "changes", "changed", "changing"),
    "transition": ("transition", "transitions", "transitional", "transitioning", "transitioned"),
    "dynamic": ("dynamic", "dynamics", "dynamically"),
    "context": ("context", "contexts", "contextual", "contextually"),
    "segmentation": ("segmentation", "segmentations", "segmented"),  # not "segment": "river segments"
    "color dictionary": ("color dictionary", "colour dictionary", "dictionary", "legend"),
}


@functools.lru_cache(maxsize=None)
def banned_regex(paradigm: str) -> tuple[re.Pattern[str], dict[str, str]]:
    """The banned-word regex of a paradigm and the map from a matched word to its banned root."""
    roots = BANNED_BY_PARADIGM[paradigm]
    word_to_root = {v: root for root in roots for v in BANNED_VARIANTS[root]}
    pattern = re.compile(r"\b(?:" + _phrase_pattern(list(word_to_root)) + r")\b", re.IGNORECASE)
    return pattern, word_to_root


COLOUR_WORDS: tuple[str, ...] = (
    "red", "reddish", "blue", "bluish", "green", "greenish", "dark green", "light green", "yellow",
    "yellowish", "brown", "brownish", "grey", "gray", "greyish", "grayish", "white", "black", "cyan",
    "pink", "pinkish", "purple", "magenta", "orange", "color", "colour", "colors", "colours", "colored",
    "coloured", "hue", "hues",
)
COLOUR_RE = re.compile(r"\b(?:" + _phrase_pattern(list(COLOUR_WORDS)) + r")\b", re.IGNORECASE)

PARADIGM_FORBIDS_COLOUR: dict[str, bool] = {"gpt35": False, "gpt4v": True}
"""Only the GPT-4V prompt forbade colour words ("Do not use color-related words")."""

PARADIGM_ALIASES: dict[str, str] = {
    "gpt35": "gpt35", "gpt-3.5": "gpt35", "gpt3.5": "gpt35", "3.5": "gpt35", "35": "gpt35", "caps_35": "gpt35",
    "gpt4v": "gpt4v", "gpt-4v": "gpt4v", "4v": "gpt4v", "caps_4v": "gpt4v",
}


def normalise_paradigm(paradigm: str) -> str:
    """``'gpt35'`` or ``'gpt4v'`` for any spelling of a prompt paradigm; ``ValueError`` otherwise.

    Besides the exact aliases, a name containing ``4v``/``vision`` means GPT-4V and one
    containing ``3.5``/``35`` means GPT-3.5 (``'gpt35_text'``, ``'chatgpt-4v'``).
    """
    key = str(paradigm).strip().lower()
    if key in PARADIGM_ALIASES:
        return PARADIGM_ALIASES[key]
    squashed = key.replace("-", "").replace("_", "").replace(" ", "")
    if "4v" in squashed or "vision" in squashed:
        return "gpt4v"
    if "3.5" in squashed or "35" in squashed:
        return "gpt35"
    raise ValueError(f"unknown caption paradigm {paradigm!r}; expected one of 'gpt35', 'gpt4v'")


# Proportion words -> the range of the class's share (of non-background pixels in the region).
# The GPT-3.5 bucket phrases ("extra large fraction") follow Algorithm 1's buckets, except that
# "small" also covers "extra small" and "large" also covers "extra large" (plain English, not a
# contradiction); generic words get deliberately loose ranges so that paraphrase is not flagged.
_BUCKET_NOUN = r"(?:fraction|part|portion|amount|quantity|proportion|share)s?"
_APPROX = r"(?:about|roughly|nearly|approximately|around|almost|close\s+to|just\s+(?:over|under))"
"""Words before a fraction ("about a third", "just over half"); the fraction's range is deliberately loose."""
PROPORTION_WORDS: list[tuple[str, str, float, float]] = [
    # (name, regex, low, high) -- share must lie in [low, high]
    ("extra small", r"(?:extra|very)[\s-]+small\s+" + _BUCKET_NOUN, 0.0, 0.10),
    ("extra large", r"(?:extra|very)[\s-]+large\s+" + _BUCKET_NOUN, 0.80, 1.0),
    ("small", r"small\s+" + _BUCKET_NOUN, 0.0, 0.20),
    ("medium", r"medium(?:[\s-]+sized)?\s+" + _BUCKET_NOUN, 0.20, 0.50),
    ("large", r"large\s+" + _BUCKET_NOUN, 0.50, 1.0),
    ("entire", r"entirely|completely|exclusively|solely|wholly|fully\s+covered", 0.90, 1.0),
    ("half", _APPROX + r"\s+half", 0.35, 0.65),
    ("nearly all", r"(?:nearly|almost|virtually|practically)\s+all", 0.85, 1.0),
    ("three quarters", _APPROX + r"\s+three[\s-]+quarters", 0.65, 0.85),
    ("two thirds", _APPROX + r"\s+two[\s-]+thirds", 0.55, 0.78),
    ("a third", _APPROX + r"\s+(?:a|one)[\s-]+third", 0.25, 0.42),
    ("a quarter", _APPROX + r"\s+(?:a|one)[\s-]+quarter", 0.17, 0.33),
    ("a tenth", _APPROX + r"\s+(?:a|one)[\s-]+tenth", 0.05, 0.16),
    ("minor", r"minor|scattered|sparse|traces?\s+of|specks?\s+of|tiny|slivers?\s+of|a\s+few\s+patches", 0.0, 0.30),
]
PROPORTION_RE = re.compile(
    "|".join(f"(?P<p{i}>\\b(?:{p})\\b)" for i, (_, p, _, _) in enumerate(PROPORTION_WORDS)), re.IGNORECASE
)
PROPORTION_GROUPS: dict[str, tuple[str, float, float]] = {
    f"p{i}": (name, lo, hi) for i, (name, _, lo, hi) in enumerate(PROPORTION_WORDS)
}
DOMINANCE_RE = re.compile(
    r"\b(?:dominat(?:es|ed|ing|e)|dominant(?:ly)?|predominant(?:ly)?|predominat(?:es|ed|ing|e)|prevail(?:s|ing)?|"
    r"majority|mostly|mainly|primarily|largely|chiefly|principal(?:ly)?|most\s+of|greater\s+part|bulk\s+of)\b",
    re.IGNORECASE,
)
"""A class said to dominate must be the largest class of its region (or within the tolerance of it)."""
PERCENT_RE = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d+)?)\s*(?:%|per\s*cent\b|percent\b)", re.IGNORECASE)

# Cross-image references (the GPT-4V prompt asked for four independent descriptions).
ORDINAL = r"(?:first|second|third|fourth|1st|2nd|3rd|4th|last|final|previous|preceding|next|former|latter)"
IMAGE_NOUN = r"(?:image|picture|scene|description|paragraph|map)"  # not "patch"/"one": "the last patch of forest"
CROSS_IMAGE_RE = re.compile(
    r"\b(?:the\s+)?" + ORDINAL + r"\s+" + IMAGE_NOUN + r"s?\b"
    r"|\b(?:other|previous|preceding|remaining|all|these|four|both)\s+(?:four\s+|three\s+|two\s+)?(?:images|pictures|scenes|descriptions)\b"
    r"|\b(?:image|picture)\s+(?:one|two|three|four|[1-4])\b"
    r"|^\s*(?:similarly|likewise|in\s+contrast|by\s+contrast|conversely|as\s+before|again)\s*,"
    r"|(?<=[.!?]\s)\s*(?:similarly|likewise|in\s+contrast|by\s+contrast|conversely|as\s+before|again)\s*,",
    re.IGNORECASE | re.MULTILINE,
)
