"""Caption statistics: lengths, sentences, vocabulary, word frequencies, land-cover mentions.

Works on any caption table (the demo's ``captions.parquet``, the ChatEarthNet release, a
STAC-built dataset): give a DataFrame, or an iterable of DataFrame chunks, with a caption text
column (``text`` by default; the release calls it ``caption``) and optional grouping columns
(``version``, ``split``, ``paradigm``). One pass over the text gives every statistic; the
release's 173,488 captions take a few seconds (see ``benchmarks/bench_textstats.py``).

Tokens ("words") are lower-cased runs of letters, digits, apostrophes and hyphens, with leading
and trailing apostrophes/hyphens stripped: ``"Land-cover, the river's bank."`` has the four words
``land-cover``, ``the``, ``river's``, ``bank`` (``0.57`` is the two words ``0`` and ``57``). A
sentence ends at a run of ``.``, ``!`` or ``?`` followed by white space or the end of the caption
(so ``0.57`` does not end one) and the text since the previous end holds a word (so ``"Done. ?!"``
is one sentence); trailing text without a terminator counts as a sentence when it holds a word; a
caption without words has no sentences.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from cen import landcover

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# ASCII fast path for tokens: every byte that is not a word character becomes a space (bytes >= 128
# only occur in non-ASCII captions, which take the regex path below). It gives exactly the regex
# path's tokens (a test compares them on random text) and is kept because it pays:
# benchmarks/bench_textstats.py times the whole pass both ways (RESULT textstats_byte_path_speedup,
# 1.7-2.0x measured: tokens 0.34 s vs 0.94 s on 17,349 captions). Sentences have no byte path: one cost
# 0.08 s vs 0.19 s there, and miscounted stretches of punctuation without a word.
_WORD_BYTES = set(b"abcdefghijklmnopqrstuvwxyz0123456789'-")
_ASCII_TABLE = bytes(i if i in _WORD_BYTES else 32 for i in range(256))
_UNICODE_NONWORD = re.compile(r"[^\w'\-]|_")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
_WORD_CHAR = re.compile(r"[^\W_]")

_CLASS_NAMES = landcover.class_names("gpt35")


def _class_words() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Split :data:`cen.landcover.CLASS_SYNONYMS` into token forms and the phrases tokens miss.

    A one-word synonym counts as a token; a phrase counts as its hyphenated token (``built-up``);
    a phrase none of whose words is a one-word synonym of its class (``built up``, ``sparse
    vegetation``) is also searched for as a phrase. Keys are the GPT-3.5 class names.
    """
    words: dict[str, tuple[str, ...]] = {}
    phrases: dict[str, tuple[str, ...]] = {}
    for idx, syns in landcover.CLASS_SYNONYMS.items():
        single = [w for w in syns if " " not in w]
        multi = [w for w in syns if " " in w]
        words[_CLASS_NAMES[idx]] = tuple(single + [w.replace(" ", "-") for w in multi])
        phrases[_CLASS_NAMES[idx]] = tuple(w for w in multi if not set(w.split()) & set(single))
    return words, phrases


CLASS_WORDS, CLASS_PHRASES = _class_words()
"""Per class (GPT-3.5 name): the tokens counted as a mention of it, and the multi-word phrases
counted as one (both from :data:`cen.landcover.CLASS_SYNONYMS`, the one list the verification
parser also reads).

A mention is one occurrence of one of these tokens or its possessive (``river's``), or of one of
the phrases, so "developed area" and "tree cover" are one mention each, "snow and ice" two
mentions of snow, and "crop fields" two mentions of crop. A phrase of one class that holds another
class's word counts for its own class only, as the verification parser reads it: "mangrove
forest" is one mention of mangroves, no mention of tree."""

_TOKEN_TO_CLASS: dict = {}
for _cls, _words in CLASS_WORDS.items():
    for _w in _words:
        for _form in (_w, _w + "'s", _w + "'" if _w.endswith("s") else _w):  # possessives count too
            _TOKEN_TO_CLASS[_form] = _cls
            _TOKEN_TO_CLASS[_form.encode()] = _cls
_SYNONYM_TOKENS = frozenset(_TOKEN_TO_CLASS)
_PHRASE_TO_CLASS = {" ".join(p.split()): c for c, ps in CLASS_PHRASES.items() for p in ps}
_PHRASE_FIRST_WORDS = tuple(sorted({p.split()[0] for p in _PHRASE_TO_CLASS}))


def _phrase_re(phrases) -> re.Pattern:
    """Any of ``phrases`` (longest first), words separated by white space, at word boundaries."""
    return re.compile(r"\b(?:" + "|".join(r"\s+".join(map(re.escape, p.split()))
                                          for p in sorted(phrases, key=len, reverse=True)) + r")\b")


_PHRASE_RE = _phrase_re(_PHRASE_TO_CLASS)
# phrases holding another class's one-word synonym -> {that word: its class} ("mangrove forest":
# {"forest": "tree"}): the word is no mention of its class there
_NESTED: dict[str, dict[str, str]] = {
    p: inner for syns in landcover.CLASS_SYNONYMS.values() for p in syns if " " in p
    if (inner := {w: _TOKEN_TO_CLASS[w] for w in p.split()
                  if w in _TOKEN_TO_CLASS and _TOKEN_TO_CLASS[w] != _TOKEN_TO_CLASS.get(p.replace(" ", "-"))})
}
# a caption can hold such a phrase only if it has the phrase's first word and an inner word as tokens
def _forms(words) -> frozenset:
    """The token forms of ``words`` as the counters see them: possessives too, str and bytes."""
    forms = {f for w in words for f in (w, w + "'s", w + "'" if w.endswith("s") else w)}
    return frozenset(forms | {f.encode() for f in forms})


_NESTED_FIRST_TOKENS = _forms(p.split()[0] for p in _NESTED)
_NESTED_INNER_TOKENS = _forms(w for inner in _NESTED.values() for w in inner)
_NESTED_RE = _phrase_re(_NESTED)



def tokenize(text: str) -> list[str]:
    """Words of one caption, lower-cased, by the module's token rule."""
    return [t.decode() for t in _tokens_lower(text.lower())] if text.isascii() else _tokens_unicode(text.lower())


def _tokens_lower(lower: str) -> list[bytes]:
    spaced = lower.encode("ascii").translate(_ASCII_TABLE)
    toks = spaced.split()
    if (b" '" in spaced or b"' " in spaced or b" -" in spaced or b"- " in spaced
            or spaced[:1] in (b"'", b"-") or spaced[-1:] in (b"'", b"-")):
        toks = [s for s in (t.strip(b"'-") for t in toks) if s]
    return toks


def _tokens_unicode(lower: str) -> list[str]:
    return [s for s in (t.strip("'-") for t in _UNICODE_NONWORD.sub(" ", lower).split()) if s]


def count_sentences(text: str) -> int:
    """Sentences in one caption (see the module docstring for the rule).

    A sentence is a stretch between terminator runs that holds a word, so terminator runs with no
    word between them ("Done. ?!") end one sentence, and text without words has none.
    """
    return sum(1 for part in _SENTENCE_END.split(text) if _WORD_CHAR.search(part))


@dataclass
class CaptionStats:
    """Statistics of one caption set (one group)."""

    n_captions: int = 0
    lengths: list[int] = field(default_factory=list)
    """Words per caption, in input order."""
    sentences: list[int] = field(default_factory=list)
    """Sentences per caption, in input order."""
    words: Counter = field(default_factory=Counter)
    """Occurrences of each word (str) over all captions."""
    class_captions: Counter = field(default_factory=Counter)
    """Number of captions mentioning each class at least once."""
    class_mentions: Counter = field(default_factory=Counter)
    """Total mentions of each class."""
    phrase_mentions: Counter = field(default_factory=Counter)
    """Mentions of each class by a multi-word phrase (:data:`CLASS_PHRASES`), part of ``class_mentions``."""
    nested_mentions: Counter = field(default_factory=Counter)
    """Words of a class inside another class's phrase ("forest" in "mangrove forest"), left out of
    ``class_mentions``."""

    @property
    def vocabulary_size(self) -> int:
        return len(self.words)

    def merge(self, other: "CaptionStats") -> "CaptionStats":
        """Statistics of both caption sets (``other``'s captions after this one's); inputs unchanged."""
        return CaptionStats(
            n_captions=self.n_captions + other.n_captions, lengths=self.lengths + other.lengths,
            sentences=self.sentences + other.sentences, words=self.words + other.words,
            class_captions=self.class_captions + other.class_captions,
            class_mentions=self.class_mentions + other.class_mentions,
            phrase_mentions=self.phrase_mentions + other.phrase_mentions,
            nested_mentions=self.nested_mentions + other.nested_mentions)

    def summary(self) -> dict[str, float | int]:
        """Counts and length statistics (words and sentences per caption)."""
        lengths = np.asarray(self.lengths, dtype=np.int64)
        sentences = np.asarray(self.sentences, dtype=np.int64)
        empty = lengths.size == 0
        return {
            "n_captions": self.n_captions,
            "n_words": int(lengths.sum()),
            "vocabulary_size": self.vocabulary_size,
            "words_mean": float("nan") if empty else float(lengths.mean()),
            "words_median": float("nan") if empty else float(np.median(lengths)),
            "words_std": float("nan") if empty else float(lengths.std()),
            "words_min": 0 if empty else int(lengths.min()),
            "words_max": 0 if empty else int(lengths.max()),
            "sentences_mean": float("nan") if empty else float(sentences.mean()),
            "sentences_min": 0 if empty else int(sentences.min()),
            "sentences_max": 0 if empty else int(sentences.max()),
        }

    def top_words(self, n: int = 20, stopwords: Iterable[str] | None = None) -> pd.DataFrame:
        """The ``n`` most frequent words (columns ``word``, ``count``, ``share``), ties by word."""
        stop = set(stopwords or ())
        total = sum(self.words.values())
        items = sorted(((w, c) for w, c in self.words.items() if w not in stop), key=lambda wc: (-wc[1], wc[0]))[:n]
        df = pd.DataFrame(items, columns=["word", "count"])
        df["share"] = df["count"] / total if total else np.nan
        return df

    def _add(self, text: str) -> None:
        lower = text.lower()
        toks: list = _tokens_lower(lower) if lower.isascii() else _tokens_unicode(lower)
        n_sent = count_sentences(text) if toks else 0
        self.n_captions += 1
        self.lengths.append(len(toks))
        self.sentences.append(n_sent)
        self.words.update(toks)
        hits = _SYNONYM_TOKENS.intersection(toks)
        classes = {_TOKEN_TO_CLASS[t] for t in hits}
        if any(w in lower for w in _PHRASE_FIRST_WORDS):
            for m in _PHRASE_RE.finditer(lower):
                cls = _PHRASE_TO_CLASS[" ".join(m.group().split())]
                self.phrase_mentions[cls] += 1
                classes.add(cls)
        if not _NESTED_FIRST_TOKENS.isdisjoint(hits) and not _NESTED_INNER_TOKENS.isdisjoint(hits):
            self._discount_nested(lower, toks, classes)
        if classes:
            self.class_captions.update(classes)

    def _discount_nested(self, lower: str, toks: list, classes: set) -> None:
        """Words inside another class's phrase ("forest" in "mangrove forest") mention nothing."""
        inside: Counter = Counter()
        for m in _NESTED_RE.finditer(lower):
            inside.update(_NESTED[" ".join(m.group().split())].values())
        self.nested_mentions.update(inside)
        for cls, n in inside.items():
            if sum(1 for t in toks if _TOKEN_TO_CLASS.get(t) == cls) <= n:
                classes.discard(cls)

    def _finish(self) -> None:
        # the ASCII path counts bytes tokens; merge them into str keys once, at the end
        if any(isinstance(k, bytes) for k in self.words):
            merged: Counter = Counter()
            for k, v in self.words.items():
                merged[k.decode() if isinstance(k, bytes) else k] += v
            self.words = merged
        self.class_mentions = Counter(self.phrase_mentions)
        for word, cls in _TOKEN_TO_CLASS.items():
            if isinstance(word, str) and word in self.words:
                self.class_mentions[cls] += self.words[word]
        self.class_mentions -= self.nested_mentions


def _iter_chunks(data: pd.DataFrame | Iterable[pd.DataFrame] | Iterable[str]) -> Iterator[pd.DataFrame]:
    if isinstance(data, pd.DataFrame):
        yield data
        return
    if isinstance(data, pd.Series):
        yield data.to_frame("text")
        return
    buffer: list[str] = []
    for item in data:
        if isinstance(item, pd.DataFrame):
            if buffer:
                yield pd.DataFrame({"text": buffer})
                buffer = []
            yield item
        else:
            buffer.append(item)
            if len(buffer) >= 50_000:
                yield pd.DataFrame({"text": buffer})
                buffer = []
    if buffer:
        yield pd.DataFrame({"text": buffer})


def caption_stats(
    data: pd.DataFrame | Iterable[pd.DataFrame] | Iterable[str],
    *,
    text_col: str = "text",
    by: str | Sequence[str] | None = None,
    source: str = "captions",
    progress: bool = False,
    total: int | None = None,
) -> dict[tuple, CaptionStats]:
    """Statistics of every caption group, in one pass.

    ``data``: a DataFrame, an iterable of DataFrame chunks, or an iterable of caption strings
    (then ``text_col`` is ``"text"``). ``by``: grouping column(s), e.g. ``("version", "split")``;
    ``None`` gives one group keyed ``("all",)``. ``source`` names the input in error messages.
    Raises ``KeyError`` for a missing column and ``ValueError`` naming the row of a caption that
    is missing or not a string.
    """
    from tqdm.auto import tqdm

    by_cols = [by] if isinstance(by, str) else list(by or [])
    groups: dict[tuple, CaptionStats] = {}
    offset = 0
    bar = tqdm(total=total, desc="caption statistics", unit="caption", disable=not progress)
    for chunk in _iter_chunks(data):
        missing = [c for c in [text_col, *by_cols] if c not in chunk.columns]
        if missing:
            raise KeyError(f"{source}: no column {', '.join(map(repr, missing))} (columns: {', '.join(map(str, chunk.columns))})")
        texts = chunk[text_col]
        bad = ~texts.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{source}: row {offset + i} (index {chunk.index[i]!r}): column {text_col!r} holds "
                f"{texts.iloc[i]!r}, not a caption string"
            )
        if by_cols:
            keys = list(zip(*(chunk[c].astype(str).tolist() for c in by_cols)))
        else:
            keys = [("all",)] * len(chunk)
        for key, text in zip(keys, texts.tolist()):
            st = groups.get(key)
            if st is None:
                st = groups[key] = CaptionStats()
            st._add(text)
        offset += len(chunk)
        bar.update(len(chunk))
    bar.close()
    for st in groups.values():
        st._finish()
    return dict(sorted(groups.items()))


def _label(key: tuple) -> str:
    return " / ".join(map(str, key))


def summary_table(stats: Mapping[tuple, CaptionStats], by: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per group with :meth:`CaptionStats.summary`; index columns named by ``by``."""
    rows = []
    for key, st in stats.items():
        names = list(by) if by else [f"group{i}" if len(key) > 1 else "group" for i in range(len(key))]
        rows.append({**dict(zip(names, key)), **st.summary()})
    return pd.DataFrame(rows)


def class_mentions_table(stats: Mapping[tuple, CaptionStats]) -> pd.DataFrame:
    """Per group and class: captions mentioning the class, their share, and total mentions."""
    rows = []
    for key, st in stats.items():
        for cls in CLASS_WORDS:
            n = st.class_captions.get(cls, 0)
            rows.append({
                "group": _label(key), "class": cls, "captions": n,
                "share": n / st.n_captions if st.n_captions else np.nan,
                "mentions": st.class_mentions.get(cls, 0),
            })
    return pd.DataFrame(rows)


def compare(a: CaptionStats, b: CaptionStats, names: tuple[str, str] = ("A", "B"), top: int = 20,
            stopwords: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """Side-by-side comparison of two caption sets.

    Returns ``summary`` (statistic × set), ``words`` (the union of both sets' top words with each
    set's count and share per 1,000 words) and ``classes`` (share of captions mentioning each class).
    """
    na, nb = names
    summary = pd.DataFrame({na: a.summary(), nb: b.summary()})
    ta, tb = a.top_words(top, stopwords), b.top_words(top, stopwords)
    union = list(dict.fromkeys([*ta["word"], *tb["word"]]))
    total_a, total_b = sum(a.words.values()) or 1, sum(b.words.values()) or 1
    words = pd.DataFrame({
        "word": union,
        f"{na} count": [a.words.get(w, 0) for w in union],
        f"{nb} count": [b.words.get(w, 0) for w in union],
        f"{na} per 1k": [1000 * a.words.get(w, 0) / total_a for w in union],
        f"{nb} per 1k": [1000 * b.words.get(w, 0) / total_b for w in union],
    })
    classes = pd.DataFrame({
        "class": list(CLASS_WORDS),
        f"{na} share": [a.class_captions.get(c, 0) / a.n_captions if a.n_captions else np.nan for c in CLASS_WORDS],
        f"{nb} share": [b.class_captions.get(c, 0) / b.n_captions if b.n_captions else np.nan for c in CLASS_WORDS],
    })
    return {"summary": summary, "words": words, "classes": classes}


def plot_length_distribution(stats: Mapping[tuple, CaptionStats], ax=None, bins: int = 40):
    """Histogram (density) of words per caption, one step line per group; returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    all_lengths = np.concatenate([np.asarray(s.lengths) for s in stats.values()]) if stats else np.array([0])
    edges = np.histogram_bin_edges(all_lengths, bins=bins)
    for key, st in stats.items():
        ax.hist(st.lengths, bins=edges, histtype="step", density=True, linewidth=1.5,
                label=f"{_label(key)} (mean {np.mean(st.lengths):.1f})")
    ax.set_xlabel("words per caption")
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    return ax


def plot_word_frequencies(stats: Mapping[tuple, CaptionStats], top: int = 20, sharey: bool = False,
                          stopwords: Iterable[str] | None = None, title: str | None = None):
    """Bar charts of the most frequent words per group (the paper's Figs. 9-10); returns the Figure.

    ``sharey=False`` (as in the paper) gives each group its own y-axis, since the GPT-3.5
    version's counts are ~16x the GPT-4V version's. ``title`` goes above all panels (e.g.
    ``"without stop words"`` when ``stopwords`` are given).
    """
    import matplotlib.pyplot as plt

    n = max(len(stats), 1)
    fig, axes = plt.subplots(n, 1, figsize=(max(6, top * 0.45), 2.8 * n), sharey=sharey, squeeze=False)
    for ax, (key, st) in zip(axes[:, 0], stats.items()):
        tw = st.top_words(top, stopwords)
        ax.bar(tw["word"], tw["count"], color="#4c72b0")
        ax.set_title(f"{_label(key)}: {st.n_captions:,} captions", fontsize="medium")
        ax.set_ylabel("occurrences")
        ax.tick_params(axis="x", rotation=60, labelsize="small")
    fig.tight_layout()
    if title:
        fig.suptitle(title, y=1.02)
    return fig


def word_cloud(st: CaptionStats, *, width: int = 800, height: int = 400, max_words: int = 150,
               stopwords: Iterable[str] | None = None, seed: int = 0):
    """A ``wordcloud.WordCloud`` of one group's word frequencies (the package's bundled font).

    ``stopwords`` default: the ``wordcloud`` package's English stop words.
    """
    from wordcloud import STOPWORDS, WordCloud

    stop = set(STOPWORDS if stopwords is None else stopwords)
    freqs = {w: c for w, c in st.words.items() if w not in stop}
    if not freqs:
        raise ValueError("no words left to draw after removing stop words")
    return WordCloud(width=width, height=height, max_words=max_words, background_color="white",
                     random_state=seed).generate_from_frequencies(freqs)


def class_mention_shares(stats: Mapping[tuple, CaptionStats]) -> pd.DataFrame:
    """Share of captions mentioning each class: one row per class (sorted by name), one column per
    group (:func:`class_mentions_table` pivoted)."""
    return class_mentions_table(stats).pivot(index="class", columns="group", values="share")


def plot_word_clouds(stats: Mapping[tuple, CaptionStats], *, width: int = 700, height: int = 300,
                     stopwords: Iterable[str] | None = None, seed: int = 0) -> Figure:
    """One :func:`word_cloud` per group, stacked, each titled with the group and its caption count."""
    import matplotlib.pyplot as plt

    n = max(len(stats), 1)
    fig, axes = plt.subplots(n, 1, figsize=(7, 3 * n), squeeze=False)
    for ax in axes[:, 0]:
        ax.axis("off")
    for ax, (key, st) in zip(axes[:, 0], stats.items()):
        cloud = word_cloud(st, width=width, height=height, stopwords=stopwords, seed=seed)
        ax.imshow(cloud.to_array(), interpolation="bilinear")
        ax.set_title(f"{_label(key)}: {st.n_captions:,} captions")
    fig.tight_layout()
    return fig


def compare_two_sets(samples: pd.DataFrame, by: Sequence[str] = ("version", "split"), *, text_col: str = "text",
                     first: Mapping[tuple, CaptionStats] | None = None, top: int = 15,
                     stopwords: Iterable[str] | None = None, source: str = "captions") -> dict[str, pd.DataFrame] | None:
    """:func:`compare` of the first two caption sets along the first column of ``by`` that splits
    ``samples`` into at least two (e.g. two versions, else the first two splits).

    ``first``: statistics already computed for ``by[0]`` (saves a pass over the text). Returns
    ``None`` when no column gives two sets.
    """
    for i, col in enumerate(by):
        if col not in samples.columns:
            continue
        groups = first if i == 0 and first is not None else caption_stats(samples, text_col=text_col, by=col,
                                                                            source=source)
        if len(groups) >= 2:
            (ka, a), (kb, b) = list(groups.items())[:2]
            return compare(a, b, names=(_label(ka), _label(kb)), top=top, stopwords=stopwords)
    return None
