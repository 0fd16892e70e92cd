"""Automatic corrections for the safe cases: cross-image phrasing in four-image (GPT-4V) answers.

These are exactly the edits the ChatEarthNet authors describe making by hand
("The fourth image" -> "This image"; "with a larger extent than in the other images" and
"Similarly," removed). Each applied rule is returned as a :class:`Fix` (rule, the text before
and after, where); the notebook writes them to the decision log with a time stamp. Anything
else a check flags goes to the review queue instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


_OTHER_IMAGES = (
    r"(?:the\s+|all\s+the\s+|all\s+)?(?:other|previous|preceding|remaining|first|second|third|fourth|last)"
    r"(?:\s+(?:three|two))?\s+(?:images?|ones?|tiles?|pictures?|scenes?)"
)
_RULES: list[tuple[str, re.Pattern[str], str]] = [
    # Sentence-initial connectors that only make sense after another image's description.
    ("drop_connector",
     re.compile(r"(^|(?<=[.!?])\s+|\n)(?:similarly|likewise|in\s+contrast|by\s+contrast|conversely|as\s+before|again)"
                r"\s*,\s*", re.IGNORECASE), r"\1"),
    # Comparative clauses against the other images ("with a larger extent than in the other images").
    ("drop_comparison",
     re.compile(r",?\s*(?:(?:with|at|of|showing|having)\s+)?(?:an?\s+)?(?:\w+\s+)?(?:larger|smaller|greater|higher|lower|bigger|"
                r"wider|narrower|more|less|fewer)\b[\w\s-]{0,40}?\s+than\s+(?:in\s+|that\s+of\s+|those\s+of\s+)?"
                + _OTHER_IMAGES + r"\b", re.IGNORECASE), ""),
    ("drop_comparison",
     re.compile(r",?\s*(?:similar\s+to|just\s+like|like|as\s+in|as\s+with|unlike|compared\s+(?:to|with)|in\s+contrast\s+to)"
                r"\s+" + _OTHER_IMAGES + r"\b,?", re.IGNORECASE), ""),
    # "The fourth image" -> "This image".
    ("this_image",
     re.compile(r"\b(the)\s+(?:first|second|third|fourth|1st|2nd|3rd|4th|last|final|next)\s+(image|picture|scene|tile)\b",
                re.IGNORECASE), "this"),
]


@dataclass(frozen=True)
class Fix:
    """One automatic correction applied to a caption."""

    rule: str
    before: str
    """The matched text."""
    after: str
    """What replaced it."""
    start: int
    """Position of the match in the text as it was when the rule ran."""


def _this(match: re.Match[str]) -> str:
    the, noun = match.group(1), match.group(2)
    return ("This " if the[0].isupper() else "this ") + noun


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r",([.;:!?])", r"\1", text)
    text = re.sub(r"(^|[.!?]\s+|\n)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)
    return text.strip()


def apply_safe_fixes(text: str) -> tuple[str, list[Fix]]:
    """Apply the cross-image corrections; returns the corrected text and the fixes applied.

    A text without cross-image phrasing comes back unchanged with an empty list.
    """
    fixes: list[Fix] = []
    out = text
    for rule, pattern, repl in _RULES:
        pieces: list[str] = []
        last = 0
        for m in pattern.finditer(out):
            new = _this(m) if rule == "this_image" else m.expand(repl)
            fixes.append(Fix(rule, m.group(), new, m.start()))
            pieces.append(out[last:m.start()])
            pieces.append(new)
            last = m.end()
        if pieces:
            out = "".join(pieces) + out[last:]
    if not fixes:
        return text, []
    tidied = _tidy(out)
    return tidied, fixes
