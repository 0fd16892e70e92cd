"""Automatic caption checks against the text itself and the tile's land-cover statistics.

Every check returns :class:`Flag` records (a code, a message and the character span it
concerns). :func:`check_caption` runs the per-caption checks on one caption and its
``(6, 12)`` region-count array; :func:`check_captions` runs them over a table and adds the
table-level checks (duplicates across tiles, length outliers).

Region-count arrays hold pixel counts per region (whole, top left, top right, bottom left,
bottom right, middle; see :data:`cen.verify.lexicon.REGIONS`) × ChatEarthNet index (0 … 11,
0 = background).

What a share means (the definition of :mod:`cen.stats.contexts`' default mode): a proportion
word is judged against the class's share of the *whole* region it speaks about, unlabelled
(background) pixels included, unless its sentence says it measures the labelled part ("of the
labelled area", "of the mapped ground", :data:`LABELLED_BASIS_RE`), in which case the share of
the region's labelled pixels is used. On fully labelled tiles both are the same; on a partly
labelled tile "an extra large amount of the image" for a class with one pixel is flagged, as it
should be (the release's GPT-3.5 statistics measured labelled pixels only and said "of the
image"). Presence, omission and denial are judged on whole-region shares too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from cen import landcover
from cen.verify import lexicon as lx
from cen.verify.parse import ParsedCaption, parse_caption

CHECK_CODES: dict[str, str] = {
    "empty": "the caption is empty",
    "truncated": "the caption stops mid-sentence",
    "duplicate_sentence": "a sentence is repeated inside the caption",
    "cross_image": "refers to or compares with another image",
    "banned_word": "uses a word the prompt banned (or a close variant)",
    "colour_word": "uses a colour word although the prompt forbade them",
    "hallucinated_class": "mentions a class absent from the tile's statistics",
    "omitted_class": "does not mention a dominant class",
    "denied_class": "says a class is absent although the statistics show it",
    "wrong_region": "a claim about a region that the region's statistics contradict",
    "wrong_proportion": "a proportion word inconsistent with the measured share",
    "duplicate": "the same text as another tile's caption",
    "length_outlier": "unusually short or long for its paradigm",
}
"""Every check code and what it means (the order the notebook reports them in)."""

FIXABLE_CODES = frozenset({"cross_image"})
"""Codes an automatic correction may resolve (see :mod:`cen.verify.fixes`)."""


@dataclass(frozen=True)
class Flag:
    """One finding of a check on one caption."""

    code: str
    message: str
    start: int
    end: int
    """Character span of the caption text the finding concerns (``0, len`` for the whole caption)."""

    @property
    def fixable(self) -> bool:
        return self.code in FIXABLE_CODES


@dataclass(frozen=True)
class CheckConfig:
    """Thresholds of the label checks (shares are fractions 0 … 1 of a region, see the module docstring)."""

    min_pixels: int = 1
    """A class with fewer pixels than this in a region counts as absent there."""
    omission_share: float = 0.20
    """A class covering at least this share of the tile must be mentioned (the 'medium' bucket edge)."""
    denial_share: float = 0.05
    """A class said to be absent may cover at most this share of the region."""
    tolerance: float = 0.02
    """Slack added to both ends of every proportion range."""
    dominance_margin: float = 0.10
    """A class said to dominate may trail the region's largest class by at most this share."""
    dominance_share: float = 0.40
    """… or must cover at least this share."""


SHARE_BASES = ("tile", "labelled")
"""What a share is taken of: ``tile``, all the region's pixels; ``labelled``, its non-background pixels."""

LABELLED_BASIS_RE = re.compile(
    r"\b(?:labell?ed|mapped|classified)\s+(?:area|areas|part|parts|portion|pixels|ground|surface|land(?!\s+cover))\b",
    re.IGNORECASE,
)
"""A sentence containing this measures its shares over the labelled pixels ("of the labelled area")."""


def region_shares(counts: np.ndarray, of: str = "labelled") -> np.ndarray:
    """Shares ``(..., 6, 12)`` (float64) of each class in each region: ``of="labelled"`` among the
    region's non-background pixels (background share 0), ``of="tile"`` among all its pixels."""
    if of not in SHARE_BASES:
        raise ValueError(f"region_shares: of={of!r}, expected one of {', '.join(SHARE_BASES)}")
    counts = np.asarray(counts, dtype=np.float64)
    total = counts[..., 1:].sum(axis=-1, keepdims=True) if of == "labelled" else counts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(total > 0, counts / np.where(total > 0, total, 1), 0.0)
    if of == "labelled":
        shares[..., 0] = 0.0
    return shares


def validate_counts(counts: np.ndarray, where: str = "region counts") -> np.ndarray:
    """Check a ``(6, 12)`` or ``(N, 6, 12)`` non-negative count array; return it as ``int64``."""
    arr = np.asarray(counts)
    if arr.shape[-2:] != (len(lx.REGIONS), landcover.N_INDICES):
        raise ValueError(f"{where}: expected shape (..., {len(lx.REGIONS)}, {landcover.N_INDICES}) "
                         f"(regions {', '.join(lx.REGIONS)} × ChatEarthNet indices), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or (arr < 0).any():
        raise ValueError(f"{where}: pixel counts must be non-negative numbers")
    return arr.astype(np.int64, copy=False)


def _name(cls: int) -> str:
    return landcover.CLASSES[cls].name_gpt35


def _region_label(regions: Sequence[int]) -> str:
    return " / ".join(lx.REGIONS[r] for r in regions)


def text_checks(text: str, paradigm: str = "gpt35") -> list[Flag]:
    """Checks on the text alone: empty, truncated, repeated sentence, cross-image, banned, colour words."""
    paradigm = lx.normalise_paradigm(paradigm)
    if text is None or not str(text).strip():
        return [Flag("empty", CHECK_CODES["empty"], 0, len(text or ""))]
    flags: list[Flag] = []
    stripped = text.rstrip()
    if stripped[-1] not in ".!?\"')”’":
        flags.append(Flag("truncated", f"ends with {stripped[-20:]!r} (no closing punctuation)",
                          max(0, len(stripped) - 20), len(stripped)))
    seen: dict[str, int] = {}
    for m in re.finditer(r"[^.!?]+[.!?]", text):
        key = " ".join(m.group().lower().split())
        if len(key) > 20 and key in seen:
            flags.append(Flag("duplicate_sentence", f"sentence repeated: {m.group().strip()[:60]!r}", m.start(), m.end()))
        seen.setdefault(key, m.start())
    for m in lx.CROSS_IMAGE_RE.finditer(text):
        flags.append(Flag("cross_image", f"cross-image reference {m.group().strip()!r}", m.start(), m.end()))
    banned, roots = lx.banned_regex(paradigm)
    for m in banned.finditer(text):
        word = " ".join(m.group().lower().split())
        root = roots[word]
        detail = f"banned word {word!r}" if word == root else f"{word!r}, a close variant of banned {root!r}"
        flags.append(Flag("banned_word", detail, m.start(), m.end()))
    if lx.PARADIGM_FORBIDS_COLOUR[paradigm]:
        for m in lx.COLOUR_RE.finditer(text):
            flags.append(Flag("colour_word", f"colour word {m.group()!r} (the {paradigm} prompt forbade them)",
                              m.start(), m.end()))
    return flags


class RegionTable:
    """One tile's ``(6, 12)`` counts as Python lists, for fast per-claim lookups."""

    __slots__ = ("counts", "totals", "sizes")

    def __init__(self, counts: np.ndarray):
        self.counts: list[list[int]] = np.asarray(counts).tolist()
        self.totals: list[int] = [sum(row[1:]) for row in self.counts]
        """Labelled (non-background) pixels per region."""
        self.sizes: list[int] = [sum(row) for row in self.counts]
        """All pixels per region."""

    def count(self, regions: Sequence[int], cls: int) -> int:
        """Pixels of ``cls`` summed over ``regions``."""
        return sum(self.counts[r][cls] for r in regions)

    def _total(self, regions: Sequence[int], of: str) -> int:
        per = self.sizes if of == "tile" else self.totals
        return sum(per[r] for r in regions)

    def share(self, regions: Sequence[int], cls: int, of: str = "tile") -> float:
        """Share of ``cls`` in the union of ``regions`` (0 if it has no pixels): of all its pixels
        (``of="tile"``) or of its non-background pixels (``of="labelled"``)."""
        total = self._total(regions, of)
        return self.count(regions, cls) / total if total else 0.0

    def top_share(self, regions: Sequence[int], of: str = "tile") -> float:
        """Share of the largest labelled class in the union of ``regions``."""
        total = self._total(regions, of)
        return max(self.count(regions, c) for c in range(1, landcover.N_INDICES)) / total if total else 0.0

    def proportion_ok(self, word: str, regions: Sequence[int], cls: int, low: float, high: float,
                      config: "CheckConfig", of: str = "tile") -> tuple[bool, float]:
        """Whether a proportion claim holds, and the measured share (taken ``of`` the tile or the labelled part)."""
        share = self.share(regions, cls, of)
        if word == "dominant":
            return (share >= config.dominance_share
                    or share >= self.top_share(regions, of) - config.dominance_margin), share
        return (low - config.tolerance <= share <= high + config.tolerance), share


def claim_bases(parsed: ParsedCaption) -> list[str]:
    """What each proportion claim of a parsed caption measures (:data:`SHARE_BASES`): ``labelled``
    when its sentence says so (:data:`LABELLED_BASIS_RE`), else ``tile``; aligned with
    ``parsed.proportions``."""
    if not parsed.proportions:
        return []
    spans = [(m.start(), m.end()) for m in _SENTENCE_RE.finditer(parsed.text) if LABELLED_BASIS_RE.search(m.group())]
    return ["labelled" if any(a <= p.start < b for a, b in spans) else "tile" for p in parsed.proportions]


_SENTENCE_RE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")


def label_checks(parsed: ParsedCaption, counts: np.ndarray, config: CheckConfig = CheckConfig()) -> list[Flag]:
    """Checks of a parsed caption against its ``(6, 12)`` region counts."""
    tab = counts if isinstance(counts, RegionTable) else RegionTable(counts)
    whole = tab.counts[lx.WHOLE]
    flags: list[Flag] = []
    reported: set[int] = set()
    for m in parsed.mentions:
        if m.negated or m.cls in reported or whole[m.cls] >= config.min_pixels:
            continue
        reported.add(m.cls)
        n = sum(1 for k in parsed.mentions if k.cls == m.cls and not k.negated)
        flags.append(Flag("hallucinated_class",
                          f"mentions {_name(m.cls)} ({parsed.text[m.start:m.end]!r}, {n}×) but the tile has "
                          f"{whole[m.cls]} {_name(m.cls)} pixels", m.start, m.end))
    mentioned = parsed.mentioned
    for cls in range(1, landcover.N_INDICES):
        share = tab.share((lx.WHOLE,), cls)
        if share >= config.omission_share and cls not in mentioned:
            flags.append(Flag("omitted_class", f"{_name(cls)} covers {share:.0%} of the tile but is not mentioned",
                              0, len(parsed.text)))
    for m in parsed.mentions:
        regs = m.regions
        word = parsed.text[m.start:m.end]
        if m.negated:
            share = tab.share(regs, m.cls)
            if share > config.denial_share:
                code = "denied_class" if regs == (lx.WHOLE,) else "wrong_region"
                flags.append(Flag(code, f"says no {word!r} in the {_region_label(regs)} but {_name(m.cls)} covers "
                                  f"{share:.0%} there", m.start, m.end))
        elif (regs != (lx.WHOLE,) and tab.count(regs, m.cls) < config.min_pixels
              and whole[m.cls] >= config.min_pixels):
            flags.append(Flag("wrong_region", f"places {word!r} in the {_region_label(regs)} where the statistics "
                              f"have no {_name(m.cls)}", m.start, m.end))
    for p, of in zip(parsed.proportions, claim_bases(parsed)):
        if whole[p.cls] < config.min_pixels:
            continue  # already a hallucination
        ok, share = tab.proportion_ok(p.word, p.regions, p.cls, p.low, p.high, config, of)
        if not ok:
            expect = (f"the largest class there covers {tab.top_share(p.regions, of):.0%}" if p.word == "dominant"
                      else f"{p.word!r} means {p.low:.0%}–{p.high:.0%}")
            part = "its labelled part" if of == "labelled" else "all its pixels"
            flags.append(Flag("wrong_proportion", f"{parsed.text[p.start:p.end]!r} for {_name(p.cls)} in the "
                              f"{_region_label(p.regions)}: measured {share:.0%} of {part}, {expect}", p.start, p.end))
    return flags


def check_caption(text: str, counts: np.ndarray, paradigm: str = "gpt35",
                  config: CheckConfig = CheckConfig()) -> list[Flag]:
    """All per-caption checks of one caption against its ``(6, 12)`` region counts."""
    counts = validate_counts(counts)
    flags = text_checks(text, paradigm)
    if flags and flags[0].code == "empty":
        return flags
    return flags + label_checks(parse_caption(text), counts, config)


FLAG_COLUMNS = ["row", "tile_id", "paradigm", "code", "message", "start", "end", "fixable"]


def check_row(text: str, paradigm: str, table: RegionTable, config: CheckConfig) -> tuple[list[Flag], ParsedCaption]:
    """Per-caption checks of one caption (normalised paradigm); also returns its parse for scoring."""
    text = text if isinstance(text, str) else ""
    flags = text_checks(text, paradigm)
    if flags and flags[0].code == "empty":
        return flags, parse_caption("")
    parsed = parse_caption(text)
    return flags + label_checks(parsed, table, config), parsed


def flags_frame(row_flags: dict[int, list[Flag]], tiles: Sequence[str], paradigms: Sequence[str]) -> pd.DataFrame:
    """Findings per row as a table with :data:`FLAG_COLUMNS`, sorted by row and position."""
    rows = [(i, tiles[i], paradigms[i], *_flag_tuple(f)) for i, flags in row_flags.items() for f in flags]
    out = pd.DataFrame(rows, columns=FLAG_COLUMNS)
    return out.sort_values(["row", "start", "code"], kind="stable").reset_index(drop=True)


def check_captions(captions: pd.DataFrame, counts: np.ndarray, config: CheckConfig = CheckConfig(),
                   length_iqr: float = 3.0, min_words: int = 10, progress: bool = True,
                   source: str = "captions") -> pd.DataFrame:
    """Run every check on a captions table; one row per finding (columns :data:`FLAG_COLUMNS`).

    ``captions`` needs ``tile_id``, ``paradigm`` and ``text``; ``counts`` is ``(N, 6, 12)`` aligned
    with its rows (see :func:`cen.verify.table.align_counts`). ``row`` is the caption's position.
    """
    _require(captions, ["tile_id", "paradigm", "text"], source)
    counts = validate_counts(counts, f"{source}: region counts")
    if len(counts) != len(captions):
        raise ValueError(f"{source}: {len(captions)} captions but {len(counts)} region-count rows")
    texts = captions["text"].tolist()
    tiles = captions["tile_id"].tolist()
    paradigms = paradigms_of(captions, source)
    row_flags: dict[int, list[Flag]] = {}
    for i in tqdm(range(len(texts)), desc="checking captions", disable=not progress, unit="caption"):
        row_flags[i] = check_row(texts[i], paradigms[i], RegionTable(counts[i]), config)[0]
    for i, f in table_checks(texts, paradigms, tiles, length_iqr, min_words, counts=counts):
        row_flags[i].append(f)
    return flags_frame(row_flags, tiles, paradigms)


def _flag_tuple(f: Flag) -> tuple:
    return (f.code, f.message, f.start, f.end, f.fixable)


def label_complexity(counts: np.ndarray, min_pixels: int = 20) -> np.ndarray:
    """How much there is to say about each tile: the number of (part, class) pairs with at least
    ``min_pixels`` pixels over the five parts, unlabelled pixels counted as a class of their own
    (a caption of a partly labelled tile also says where the label is missing), from ``(N, 6, 12)``
    region counts (0 … 60). A fully labelled one-class tile scores 5, a tile with three classes in
    every part 15."""
    counts = np.asarray(counts)
    return (counts[:, 1:, :] >= min_pixels).sum(axis=(1, 2))


def _statistics_keys(counts: np.ndarray) -> list[bytes]:
    """A key per tile that is equal exactly when two tiles have the same ``(6, 12)`` counts."""
    flat = np.ascontiguousarray(np.asarray(counts, dtype=np.int64).reshape(len(counts), -1))
    return [row.tobytes() for row in flat]


def _pools(members: np.ndarray, levels: np.ndarray, min_group: int) -> dict[int, np.ndarray]:
    """For each complexity level of ``members``: its own captions if there are ``min_group``, else
    those of the nearest levels, widened one step at a time until there are (or all)."""
    out = {}
    for level in np.unique(levels[members]):
        spread = np.abs(levels[members] - level)
        for width in np.unique(spread):
            pool = members[spread <= width]
            if len(pool) >= min_group or width == spread.max():
                out[int(level)] = pool
                break
    return out


def table_checks(texts: Sequence[str], paradigms: Sequence[str], tiles: Sequence[str],
                 length_iqr: float = 3.0, min_words: int = 10, counts: np.ndarray | None = None,
                 min_group: int = 20, length_ratio: float = 2.5, min_level: int = 5) -> Iterable[tuple[int, Flag]]:
    """Checks that need the whole table: the same text on tiles of different statistics; length outliers.

    ``duplicate``: a text (case and spacing ignored) shared with a caption of another tile of the
    same paradigm. With ``counts`` (``(N, 6, 12)``, aligned with ``texts``), tiles with identical
    label statistics may share a text (a deterministic captioner must give them the same one):
    only captions whose text also describes a tile of *different* statistics are flagged.

    ``length_outlier``: fewer than ``min_words`` words, or a length far from what comparable
    captions have. Comparable: the same paradigm and, with ``counts``, the same
    :func:`label_complexity` (a level with fewer than ``min_group`` captions is pooled with the
    nearest levels until there are). A caption's expected length is the median word count of its
    level (of the pool when the level has fewer than ``min_level``); its ratio length / expected
    is an outlier below ``Q1 - k·IQR`` and below ``1 / length_ratio``, or above ``Q3 + k·IQR`` and
    above ``length_ratio``, of its pool's ratios (IQR floored at 10 % of the median; the ratio bound
    keeps a captioner whose lengths barely vary, such as the template, from flagging ordinary
    variation). A paradigm with fewer than ``min_group`` captions gets only the ``min_words`` rule.
    """
    keys = _statistics_keys(counts) if counts is not None else None
    groups: dict[tuple[str, str], list[int]] = {}
    for i, t in enumerate(texts):
        if isinstance(t, str) and t.strip():
            groups.setdefault((paradigms[i], " ".join(t.lower().split())), []).append(i)
    for members in groups.values():
        if len({tiles[i] for i in members}) < 2:
            continue
        for i in members:
            others = sorted({str(tiles[j]) for j in members
                             if tiles[j] != tiles[i] and (keys is None or keys[j] != keys[i])})
            if others:
                what = "other tile(s)" if keys is None else "other tile(s) with different label statistics"
                yield i, Flag("duplicate", f"same text as the caption of {len(others)} {what}, e.g. {others[0]}",
                              0, len(texts[i]))
    words = np.array([len(t.split()) if isinstance(t, str) else 0 for t in texts])
    par = np.array(paradigms)
    levels = label_complexity(counts) if counts is not None else np.zeros(len(texts), dtype=np.int64)
    for p in np.unique(par):
        idx = np.flatnonzero((par == p) & (words > 0))
        ratio = np.ones(len(texts))
        fences: dict[int, tuple[float, float]] = {}
        expected: dict[int, float] = {}
        if len(idx) >= min_group:
            pools = _pools(idx, levels, min_group)
            for level, pool in pools.items():
                own = idx[levels[idx] == level]
                expected[level] = float(np.median(words[own] if len(own) >= min_level else words[pool]))
            ratio[idx] = words[idx] / np.array([expected[int(v)] for v in levels[idx]])
            for level, pool in pools.items():
                q1, med, q3 = np.percentile(ratio[pool], [25, 50, 75])
                iqr = max(q3 - q1, 0.1 * med)
                fences[level] = (min(q1 - length_iqr * iqr, 1 / length_ratio), max(q3 + length_iqr * iqr, length_ratio))
        for i in idx:
            like = f"{p} captions" if counts is None else f"{p} captions of tiles of complexity {levels[i]}"
            lo, hi = fences.get(int(levels[i]), (-np.inf, np.inf))
            if words[i] < min_words:
                yield int(i), Flag("length_outlier", f"{words[i]} words, below {min_words}", 0, len(texts[i]))
            elif not lo <= ratio[i] <= hi:
                yield int(i), Flag("length_outlier", f"{words[i]} words, {ratio[i]:.1f} times the median "
                                   f"{expected[int(levels[i])]:.0f} of {like}", 0, len(texts[i]))


def paradigms_of(captions: pd.DataFrame, source: str = "captions") -> list[str]:
    """The normalised paradigm of every row (:func:`cen.verify.lexicon.normalise_paradigm`);
    an unknown one raises ``ValueError`` naming ``source``, the row and the tile."""
    out = []
    for i, (tile, p) in enumerate(zip(captions["tile_id"], captions["paradigm"])):
        try:
            out.append(lx.normalise_paradigm(p))
        except ValueError as exc:
            raise ValueError(f"{source}: row {i} (tile {tile!r}): {exc}") from None
    return out


def _require(df: pd.DataFrame, columns: list[str], source: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {', '.join(missing)}; has {', '.join(map(str, df.columns))}")


def check_texts(texts: Sequence[str], paradigms: Sequence[str], ids: Sequence[str] | None = None,
                length_iqr: float = 3.0, min_words: int = 10, progress: bool = True) -> pd.DataFrame:
    """Text-only checks (no label statistics needed): form, cross-image, banned and colour words,
    duplicates and length outliers. For captions whose label maps are not available, such as the
    published ChatEarthNet release (``paradigms`` may be its versions ``'35'`` / ``'4v'``)."""
    texts = [t if isinstance(t, str) else "" for t in texts]
    norm = [lx.normalise_paradigm(p) for p in paradigms]
    ids = list(ids) if ids is not None else [str(i) for i in range(len(texts))]
    if not len(texts) == len(norm) == len(ids):
        raise ValueError(f"check_texts: {len(texts)} texts, {len(norm)} paradigms and {len(ids)} ids differ in length")
    row_flags = {i: text_checks(texts[i], norm[i])
                 for i in tqdm(range(len(texts)), desc="checking texts", disable=not progress, unit="caption")}
    for i, f in table_checks(texts, norm, ids, length_iqr, min_words):
        row_flags[i].append(f)
    return flags_frame(row_flags, ids, norm)
