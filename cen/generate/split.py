"""Splitting one multi-image answer (the GPT-4V paradigm's four paragraphs) into per-tile captions.

Accepted layouts, tried in order; the first that yields exactly ``n`` parts wins:

1. explicit headings: ``Image 1:`` / ``**Image 2**`` / ``Paragraph 3:`` / ``First image:`` /
   ``1.`` at a line start (the heading is removed from the caption);
2. paragraphs separated by blank lines;
3. non-empty lines.

Anything else -- headings that do not count 1..n in order, or a paragraph count other than
``n`` -- is *not* guessed: :func:`split_answer` returns ``None`` and the caller flags the
request ``unsplittable`` with the raw answer kept.
"""

from __future__ import annotations

import re

_ORD = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8}
_SEP = r"[*_ \t]*(?:[:.\-\u2013\u2014)]|\*\*|__|$)[*_ \t]*"
_HEADING = re.compile(
    r"^[ \t>#*_]*(?:(?:(?:image|picture|paragraph|description|tile)\s*(?P<num>\d+)"
    r"|(?P<ord>first|second|third|fourth|fifth|sixth|seventh|eighth)\s+(?:image|picture|paragraph|description|tile))"
    + _SEP + r"|(?P<list>\d+)[.)][ \t]*)",
    re.IGNORECASE | re.MULTILINE,
)


def _clean(part: str) -> str:
    return re.sub(r"\s+", " ", part).strip()


def split_answer(text: str, n: int) -> list[str] | None:
    """``n`` captions from one answer, or ``None`` when it cannot be split unambiguously."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not isinstance(text, str) or not text.strip():
        return None
    if n == 1:
        return [_clean(text)]
    heads = list(_HEADING.finditer(text))
    if heads:
        nums = [int(h["num"]) if h["num"] else _ORD[h["ord"].lower()] if h["ord"] else int(h["list"]) for h in heads]
        if nums == list(range(1, n + 1)):
            parts = [_clean(text[h.end(): heads[k + 1].start() if k + 1 < len(heads) else len(text)])
                     for k, h in enumerate(heads)]
            if all(parts):
                return parts
        if len(heads) >= 2:
            return None  # headings present but not 1..n: do not guess
    paras = [_clean(p) for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    if len(paras) == n:
        return paras
    lines = [_clean(p) for p in text.strip().splitlines() if p.strip()]
    if len(lines) == n:
        return lines
    return None
