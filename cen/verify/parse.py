"""Read a caption into the claims it makes: class mentions, their regions, proportion words.

A caption is split into sentences and each sentence into clauses (at ``, ; :`` and
``while / whereas / but``). A clause naming one or more regions ("top left", "upper half")
speaks about those regions; a clause naming none inherits the regions of the previous clause
of the same sentence, unless it speaks about the whole image ("overall", "the image"). A class
mention is *negated* when a negator precedes it ("no water or crops") or follows it ("water is
absent"). A clause naming several classes and several regions gives each class the regions named
after it, up to the next class ("a lake in the top left and wetlands along the eastern edge").
Proportion words attach to the nearest class mention of their clause; a clause naming
no class that opens with a participle ("..., covering a large part of the image") measures the
first class of the previous clause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cen.verify import lexicon as lx

_SENTENCE_RE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")
_PARTICIPLE_RE = re.compile(
    r"\s*(?:and\s+)?(?:covering|occupying|taking\s+up|accounting\s+for|making\s+up|spanning|filling|claiming|"
    r"comprising|representing|forming)\b", re.IGNORECASE)
"""A clause opening with one of these (and naming no class) measures the previous clause's subject."""
_CLAUSE_SPLIT_RE = re.compile(r"[,;:]|\b(?:while|whereas|but)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Mention:
    """One class word in a caption."""

    cls: int
    """ChatEarthNet index (1 … 11)."""
    start: int
    end: int
    """Character span in the caption text."""
    negated: bool
    regions: tuple[int, ...]
    """Regions the clause speaks about (indices into :data:`~cen.verify.lexicon.REGIONS`); ``(0,)`` = whole image."""


@dataclass(frozen=True)
class ProportionClaim:
    """A proportion word tied to a class and region: the class's share must lie in ``[low, high]``."""

    cls: int
    regions: tuple[int, ...]
    word: str
    """The kind of claim: a bucket name, ``'dominant'`` or ``'percent'``."""
    low: float
    high: float
    start: int
    end: int


@dataclass
class ParsedCaption:
    """Everything the checks and the consistency score need from one caption."""

    text: str
    mentions: list[Mention] = field(default_factory=list)
    proportions: list[ProportionClaim] = field(default_factory=list)

    @property
    def mentioned(self) -> set[int]:
        """Classes mentioned affirmatively anywhere (negated mentions excluded)."""
        return {m.cls for m in self.mentions if not m.negated}

    @property
    def spatial_claims(self) -> list[Mention]:
        """Mentions tied to a region other than the whole image (affirmative or negated)."""
        return [m for m in self.mentions if m.regions != (lx.WHOLE,)]


def _clauses(sentence: str, offset: int) -> list[tuple[int, int]]:
    """Spans (absolute) of the clauses of a sentence starting at ``offset``."""
    spans, start = [], 0
    for m in _CLAUSE_SPLIT_RE.finditer(sentence):
        spans.append((offset + start, offset + m.start()))
        start = m.end()
    spans.append((offset + start, offset + len(sentence)))
    return [(a, b) for a, b in spans if b > a]


def _regions_in(text: str) -> tuple[int, ...]:
    found: set[int] = set()
    for m in lx.REGION_RE.finditer(text):
        found.update(lx.REGION_GROUPS[m.lastgroup])
    return tuple(sorted(found))


def _own_regions(clause: str, matches: list[re.Match]) -> dict[int, tuple[int, ...]]:
    """For a clause naming several classes and several regions ("a lake in the top left and
    wetlands along the eastern edge"): mention index -> the regions named between it and the next
    mention (or, when none follow it, between the previous mention and it)."""
    places = [(m.start(), lx.REGION_GROUPS[m.lastgroup]) for m in lx.REGION_RE.finditer(clause)]
    own: dict[int, tuple[int, ...]] = {}
    for k, m in enumerate(matches):
        nxt = matches[k + 1].start() if k + 1 < len(matches) else len(clause)
        prv = matches[k - 1].end() if k else 0
        after = {r for pos, regs in places if m.end() <= pos < nxt for r in regs}
        before = {r for pos, regs in places if prv <= pos < m.start() for r in regs}
        if after or before:
            own[k] = tuple(sorted(after or before))
    return own


def _nearest(mentions: list[Mention], start: int, end: int) -> Mention | None:
    """The affirmative mention closest to a span; on a tie the one after it."""
    best, best_key = None, None
    for m in mentions:
        if m.negated:
            continue
        gap = start - m.end if m.end <= start else m.start - end
        key = (max(gap, 0), 0 if m.start >= end else 1)
        if best_key is None or key < best_key:
            best, best_key = m, key
    return best


def parse_caption(text: str, tolerance: float = 0.0) -> ParsedCaption:
    """Parse a caption into class mentions and proportion claims.

    ``tolerance`` widens every proportion range on both sides (share units, 0 … 1).
    """
    parsed = ParsedCaption(text=text or "")
    text = parsed.text
    for sent in _SENTENCE_RE.finditer(text):
        s_start = sent.start()
        may_negate = lx.NEGATOR_HINT_RE.search(sent.group()) is not None
        regions: tuple[int, ...] = (lx.WHOLE,)
        subject: Mention | None = None
        for c_start, c_end in _clauses(sent.group(), s_start):
            clause = text[c_start:c_end]
            named = _regions_in(clause)
            if named:
                regions = named
            elif lx.WHOLE_IMAGE_RE.search(clause):
                regions = (lx.WHOLE,)
            clause_mentions: list[Mention] = []
            matches = list(lx.CLASS_RE.finditer(clause))
            own = _own_regions(clause, matches) if len(named) > 1 and len(matches) > 1 else {}
            for k, m in enumerate(matches):
                a, b = c_start + m.start(), c_start + m.end()
                before = text[max(s_start, a - 160):a]
                after = text[b:c_end]
                negated = may_negate and bool(lx.NEGATION_BEFORE_RE.search(before) or lx.NEGATION_AFTER_RE.match(after))
                clause_mentions.append(Mention(lx.class_of(m.group()), a, b, negated, own.get(k) or regions))
            parsed.mentions.extend(clause_mentions)
            if any(not m.negated for m in clause_mentions):
                subject = next(m for m in clause_mentions if not m.negated)
            elif subject is not None and not clause_mentions and _PARTICIPLE_RE.match(clause):
                # "Water is the dominant class, covering an extra large amount of the image": the
                # participle clause measures the previous clause's subject, in this clause's regions
                clause_mentions = [Mention(subject.cls, subject.start, subject.end, False,
                                           regions if (named or lx.WHOLE_IMAGE_RE.search(clause)) else subject.regions)]
            else:
                continue
            for m in lx.PROPORTION_RE.finditer(clause):
                name, lo, hi = lx.PROPORTION_GROUPS[m.lastgroup]
                _claim(parsed, clause_mentions, c_start + m.start(), c_start + m.end(), name, lo, hi, tolerance)
            for m in lx.DOMINANCE_RE.finditer(clause):
                _claim(parsed, clause_mentions, c_start + m.start(), c_start + m.end(), "dominant", 0.0, 1.0, tolerance)
            for m in lx.PERCENT_RE.finditer(clause):
                value = float(m.group(1)) / 100.0
                _claim(parsed, clause_mentions, c_start + m.start(), c_start + m.end(), "percent",
                       value - 0.10, value + 0.10, tolerance)
    return parsed


def _claim(parsed: ParsedCaption, mentions: list[Mention], start: int, end: int, word: str,
           low: float, high: float, tolerance: float) -> None:
    if any(m.start < end and start < m.end for m in mentions):
        return  # the word is part of a class name ("sparse vegetation")
    target = _nearest(mentions, start, end)
    if target is None:
        return
    parsed.proportions.append(
        ProportionClaim(target.cls, target.regions, word, max(0.0, low - tolerance), min(1.0, high + tolerance), start, end)
    )
