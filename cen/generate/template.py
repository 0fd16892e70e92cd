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

The captioner is three modules: :mod:`cen.generate.template_wording` (the phrase tables and word
helpers), :mod:`cen.generate.template_sentences` (the tile's seeded choices and the sentence
builders) and this one (the sentence plans, the attribute variants and their LLM contexts, the
public functions). Every name of the captioner stays importable from here.
"""

from __future__ import annotations

import hashlib
import random
from typing import TYPE_CHECKING

import numpy as np

from cen.generate.template_sentences import (
    _absent,
    _agree_key,
    _as_counts,
    _closing,
    _composition,
    _contrast,
    _dominant,
    _groups,
    _layout,
    _led_name,
    _location,
    _minor_sentences,
    _opening_count,
    _part_sentence,
    _portrait,
    _Tile,
    _v,
    _where,
)
from cen.generate.template_wording import _AMOUNTS, _article, MIN_PIXELS  # noqa: F401 - re-exported
from cen.generate.template_wording import _NAMES, _PLAIN, _QUADS, MENTION_SHARE, _cap, _join, size_word
from cen.landcover import BOTTOM_LEFT as BL
from cen.landcover import BOTTOM_RIGHT as BR
from cen.landcover import MIDDLE as MID
from cen.landcover import N_INDICES, REGIONS, WHOLE
from cen.landcover import TOP_LEFT as TL
from cen.landcover import TOP_RIGHT as TR

if TYPE_CHECKING:
    import pandas as pd

TEMPLATE_CAPTIONER_VERSION = "template-2"
"""Version of this captioner's wording; stored as ``template_version`` of its captions."""

ATTRIBUTE_VARIANTS = ("full", "no_size", "no_position", "classes_only")
"""Caption variants from the same statistics (the attribute ablation)."""

PLANS = ("overview", "parts", "classes", "portrait")
"""Sentence plans of the ``full`` variant (one is drawn per tile)."""

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
