"""Sentences of the offline ``template`` captioner (:mod:`cen.generate.template`).

:class:`_Tile` holds one tile's ``(6, 12)`` region counts and the seeded generator its wording
is drawn from (shares, ranked classes, amount and region phrases true of the counts); the
functions below turn it into sentences: where a class lies (:func:`_location`, :func:`_where`),
the composition, the layout of the leading classes, one sentence per part, the small classes,
absent classes, the contrast between halves, the closing theme and the GPT-4V-like portrait.
The sentence plans that string these together are in :mod:`cen.generate.template`.
"""

from __future__ import annotations

import random
from typing import Sequence

import numpy as np

from cen.generate.template_wording import (
    _AMOUNTS,
    _BUCKET_NOUNS,
    _COMPASS,
    _EDGES,
    _FORMS,
    _HALVES,
    _NAMES,
    _NUMBERS,
    _PLAIN,
    _QUADS,
    _REGION_NAMES,
    _THEMES,
    MENTION_SHARE,
    MIN_PIXELS,
    _article,
    _cap,
    _join,
    _pct,
    _v,
    size_word,
)
from cen.landcover import BOTTOM_LEFT as BL
from cen.landcover import BOTTOM_RIGHT as BR
from cen.landcover import MIDDLE as MID
from cen.landcover import N_INDICES, WHOLE
from cen.landcover import TOP_LEFT as TL
from cen.landcover import TOP_RIGHT as TR


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

