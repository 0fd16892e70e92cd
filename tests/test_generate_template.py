"""The offline template captioner: deterministic, readable, exact against the statistics, and
read back completely by the verification parser."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from cen import textstats
from cen.generate import template as T
from cen.generate.template import ATTRIBUTE_VARIANTS, caption_from_counts, size_word, template_caption
from cen.stats import region_counts
from cen.verify import check_caption, check_captions, lexicon, parse_caption, score_table

TL, TR, BL, BR, MID = lexicon.TOP_LEFT, lexicon.TOP_RIGHT, lexicon.BOTTOM_LEFT, lexicon.BOTTOM_RIGHT, lexicon.MIDDLE
SENTENCE = re.compile(r"[^.!?]+[.!?]")


def _random_maps(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    maps = []
    for i in range(n):
        lab = np.zeros((256, 256), np.uint8) if i % 3 else np.full((256, 256), int(rng.integers(1, 12)), np.uint8)
        for _ in range(int(rng.integers(1, 7))):
            c = int(rng.integers(0, 12))
            y, x = rng.integers(0, 256, 2)
            h, w = rng.integers(3, 200, 2)
            lab[y : y + h, x : x + w] = c
        if i % 9 == 0:
            lab = rng.integers(0, 12, (256, 256)).astype(np.uint8)
        maps.append(lab)
    return maps


def test_deterministic_and_seed_varies_wording():
    lab = _random_maps(3)[1]
    a = template_caption(lab, seed=0)
    assert a == template_caption(lab, seed=0)
    assert a == template_caption(region_counts(lab), seed=0)
    assert len({template_caption(lab, seed=s) for s in range(8)}) >= 6


def _mentions(text: str, cls: int) -> list[tuple[int, ...]]:
    return [m.regions for m in parse_caption(text).mentions if m.cls == cls and not m.negated]


def test_places_classes_where_their_pixels_are():
    lab = np.full((256, 256), 3, np.uint8)  # tree
    lab[:128, :128] = 1  # water fills the top left
    lab[:, 246:] = 2  # a narrow strip of developed area along the eastern edge
    texts = [template_caption(lab, seed=s) for s in range(30)]
    for text in texts:
        assert parse_caption(text).mentioned == {1, 2, 3}, text
        for regions in _mentions(text, 1):  # water: only where it is (the top left, which the middle overlaps)
            assert regions in ((0,), (MID,)) or TL in regions, text
        for regions in _mentions(text, 2):  # developed area: only in regions that hold its pixels
            assert regions == (0,) or TR in regions or BR in regions, text
        assert text.split(". ")[-1].startswith(("Overall", "Taken together", "Altogether", "In short", "All in all",
                                                "The overall", "To sum up", "In summary", "Above all", "In total",
                                                "Summing up"))
    joined = " ".join(texts)
    assert re.search(r"(?:patch|strip|band|cluster|ribbon) of (?:developed area|built-up land|buildings|settlement)"
                     r" \w+ (?:along|near|close to) the (?:eastern|right) edge", joined)
    assert re.search(r"(?:water|surface water|open water) (?:fills|covers|takes up|blankets|claims) (?:nearly|almost|"
                     r"virtually) all of the (?:top left|upper left|north-west corner|top-left corner|north-western "
                     r"quarter|upper-left quarter)", joined) or "top left is" in joined or "upper left is" in joined \
        or re.search(r"(?:top left|upper left|north-west corner|top-left corner|north-western quarter|upper-left "
                     r"quarter), (?:water|surface water|open water)", joined)


def test_two_quadrants_that_agree_are_merged():
    lab = np.full((256, 256), 5, np.uint8)  # grass in the south
    lab[:128] = 3  # trees fill the northern half
    lab[200:, :40] = 1
    merged = [r for s in range(20) for r in _mentions(template_caption(lab, seed=s), 3) if len(r) == 2]
    assert merged and set(merged) == {(TL, TR)}
    # no sentence about a single northern quadrant once the half is described
    for s in range(20):
        text = template_caption(lab, seed=s)
        regions = [m.regions for m in parse_caption(text).mentions]
        assert not ((TL, TR) in regions and ((TL,) in regions or (TR,) in regions)), text


def test_articles_plurals_and_agreement():
    lab = np.full((256, 256), 3, np.uint8)
    lab[:, 200:] = 5
    lab[10:20, 10:20] = 2
    texts = " ".join(template_caption(lab, seed=s) for s in range(40))
    assert re.search(r"\btrees (?:cover|occupy|take up|spread over|fill|lead|are)\b", texts)
    assert not re.search(r"\btrees (?:covers|occupies|takes|spreads|fills|leads|is)\b", texts)
    assert not re.search(r"\b(?:grass|grassland|forest|woodland|tree cover) (?:cover|occupy|fill|lead|are)\b", texts)
    assert not re.search(r"\ba (?:[aeiou])", texts) and not re.search(r"\ban (?:[^aeiou\s])", texts)


def test_no_banned_colour_or_cross_image_words():
    for lab in _random_maps(60, seed=3):
        for variant in ATTRIBUTE_VARIANTS:
            text = template_caption(lab, seed=2, attributes=variant)
            for paradigm in ("gpt35", "gpt4v"):
                pattern, _ = lexicon.banned_regex(paradigm)
                assert not pattern.search(text), text
            assert not lexicon.COLOUR_RE.search(text), text
            assert not lexicon.CROSS_IMAGE_RE.search(text), text


@pytest.mark.parametrize("variant", ATTRIBUTE_VARIANTS)
def test_every_variant_is_label_consistent_with_zero_flags(variant):
    maps = _random_maps(120, seed=5)
    counts = region_counts(np.stack(maps))
    texts = [caption_from_counts(c, seed=7, attributes=variant) for c in counts]
    table = score_table(texts, counts)
    for col in ("precision", "recall", "spatial_accuracy", "proportion_accuracy"):
        vals = table[col].dropna()
        assert (vals == 1.0).all(), (col, texts[int(table[col].fillna(1).idxmin())])
    for text, c in zip(texts, counts):
        assert check_caption(text, c, "gpt4v") == [], text
    described = table["n_mentioned"] > 0
    assert described.sum() >= 100
    if variant == "full":
        assert (table.loc[described, "n_proportion_claims"] >= 1).all()
        assert (table.loc[described, "n_spatial_claims"] >= 1).mean() >= 0.9


def test_amount_phrases_are_read_back_with_a_range_that_contains_them():
    for low, high, phrases in T._AMOUNTS:
        for phrase in phrases:
            parsed = parse_caption(f"Trees cover {phrase} of the tile.")
            (claim,) = parsed.proportions
            assert claim.cls == 3 and claim.low <= low and min(high, 1.0) <= claim.high, (phrase, claim)
    for share in np.linspace(0, 1, 101):
        word = size_word(float(share))
        (claim,) = parse_caption(f"Trees cover {T._article(word)} {word} share of the tile.").proportions
        assert claim.low - 0.02 <= share <= claim.high + 0.02


def test_size_words_are_algorithm1_buckets():
    assert [size_word(s) for s in (0.0, 0.09, 0.1, 0.19, 0.2, 0.49, 0.5, 0.79, 0.8, 1.0)] == [
        "extra small", "extra small", "small", "small", "medium", "medium", "large", "large",
        "extra large", "extra large",
    ]
    with pytest.raises(ValueError, match="outside 0-1"):
        size_word(1.5)


def test_partly_labelled_tiles_say_of_the_labelled_area():
    lab = np.zeros((256, 256), np.uint8)
    lab[:, :100] = 3
    lab[:, 100:160] = 5
    texts = [template_caption(lab, seed=s) for s in range(12)]
    assert any("labelled" in t or "mapped ground" in t for t in texts)
    whole = r"(?:the tile|the image|this tile|the scene|the picture|the frame)\b"
    amount = r"(?:share|part|portion|fraction|amount|quantity|proportion|all|half|thirds?|quarters?|tenth|most|bulk|majority)"
    assert not any(re.search(amount + " of " + whole + "|, " + whole + r" is \d",
                             t.replace("labelled part of the image", "")) for t in texts)


# ----------------------------------------------------------------------------------------------
# attribute variants

_SIZE_WORDS = re.compile(r"\b(?:small|large|medium|most|mostly|mainly|about|roughly|third|tenth|majority|bulk|greater|"
                         r"patch(?:es)?|specks?|traces?|tiny|sliver|little|strip|band|\d+%)\b", re.IGNORECASE)
_POSITION_WORDS = re.compile(r"\b(?:corners?|edge|quadrants?|centre|central|middle|side|north\w*|south\w*|"
                             r"east\w*|west\w*|top|bottom|upper|lower|left|right)\b", re.IGNORECASE)


def test_no_size_has_no_proportion_or_size_words():
    for lab in _random_maps(80, seed=11):
        text = template_caption(lab, seed=4, attributes="no_size")
        parsed = parse_caption(text)
        assert parsed.proportions == [] and not _SIZE_WORDS.search(text), text
        full = template_caption(lab, seed=4)
        assert parse_caption(full).mentioned == parsed.mentioned  # same classes kept


def test_no_position_has_no_region_phrases():
    for lab in _random_maps(80, seed=12):
        text = template_caption(lab, seed=4, attributes="no_position")
        parsed = parse_caption(text)
        assert not lexicon.REGION_RE.search(text) and not _POSITION_WORDS.search(text), text
        assert all(m.regions == (0,) for m in parsed.mentions), text
        assert parsed.proportions or not parsed.mentioned, text  # sizes kept


def test_classes_only_has_only_class_mentions():
    allowed = {"this", "tile", "contains", "the", "land", "cover", "types", "present", "are", "image", "holds", "and",
               "a", "few", "pixels", "of", "only", "too", "to", "describe", "further", "no", "labelled", "in", "any",
               "its", "parts"}
    class_words = {w for words in lexicon.CLASS_SYNONYMS.values() for p in words for w in p.split()}
    for lab, counts in zip(_random_maps(80, seed=13), region_counts(np.stack(_random_maps(80, seed=13)))):
        text = template_caption(lab, seed=4, attributes="classes_only")
        parsed = parse_caption(text)
        assert parsed.proportions == [] and not parsed.spatial_claims, text
        assert set(textstats.tokenize(text)) <= allowed | class_words, text
        present = {c for c in range(1, 12) if counts[0, c] >= T.MIN_PIXELS}
        if present:
            assert parsed.mentioned == present, text


def test_empty_and_bad_input():
    assert "no labelled land cover" in template_caption(np.zeros((64, 64), np.uint8))
    lab = np.zeros((256, 256), np.uint8)
    lab[:10, :1] = 5  # 10 pixels: below the 20-pixel threshold everywhere
    assert template_caption(lab) == "The image holds only a few pixels of grassland, too few to describe further."
    with pytest.raises(ValueError, match="shape"):
        template_caption(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="non-negative"):
        template_caption(-np.ones((6, 12), np.int64))
    with pytest.raises(ValueError, match="unknown attributes variant 'no_colour'; expected one of full, no_size"):
        template_caption(lab, attributes="no_colour")


# ----------------------------------------------------------------------------------------------
# the demo: what `cen report --profile demo` captions, through the library


@pytest.fixture(scope="module")
def demo_captions(tmp_path_factory):
    from cen.generate.runner import GenerateConfig, build_workdir_requests, generate
    from cen.sources.demo import build_demo_tiles
    from cen.stats import compute_stats, counts_from_table

    wd = tmp_path_factory.mktemp("demo_captions")
    build_demo_tiles(wd)
    stats = compute_stats(wd / "tiles.parquet", wd / "stats.parquet", progress=False)
    result = generate(build_workdir_requests(wd, ["gpt35", "gpt4v"]), GenerateConfig(backend="template", progress=False))
    caps = result.captions
    counts = counts_from_table(stats)
    row = {t: i for i, t in enumerate(stats["tile_id"].astype(str))}
    return caps, counts[[row[t] for t in caps["tile_id"].astype(str)]]


def test_demo_vocabulary_is_at_least_300_words(demo_captions):
    caps, _ = demo_captions
    assert len(caps) == 48 and caps["text"].notna().all()
    st = textstats.caption_stats(caps, text_col="text")
    vocab = next(iter(st.values())).vocabulary_size
    assert vocab >= 300, vocab


def test_demo_first_two_sentences_differ_unless_the_statistics_do_not(demo_captions):
    caps, counts = demo_captions
    seen: dict[str, bytes] = {}
    for text, c in zip(caps["text"], counts):
        key = " ".join(SENTENCE.findall(text)[:2])
        assert seen.setdefault(key, c.tobytes()) == c.tobytes(), key


def test_demo_captions_have_zero_flags_and_full_consistency(demo_captions):
    caps, counts = demo_captions
    flags = check_captions(caps, counts, progress=False)
    assert flags.empty, flags[["tile_id", "code", "message"]].to_string()
    scores = score_table(caps["text"], counts)
    assert (scores["score"] == 1.0).all()
    assert isinstance(caps, pd.DataFrame)


# ----------------------------------------------------------------------------------------------
# the attribute ablation: contexts for LLMs, `cen generate --attributes`


def test_attribute_contexts_carry_only_their_attributes():
    lab = np.full((256, 256), 3, np.uint8)
    lab[:128, :128] = 1
    lab[200:, 200:] = 6
    counts = region_counts(lab)
    assert T.attribute_context(counts, "full") is None
    no_size = T.attribute_context(counts, "no_size")
    assert no_size.startswith("The land cover types present, in class order, are: water; tree; crop; \n")
    assert "The top left contains: water.\n" in no_size and "The bottom right contains: tree, crop.\n" in no_size
    assert not re.search(r"small|large|medium|most|least", no_size)
    no_position = T.attribute_context(counts, "no_position")
    assert no_position == ("The overall land cover distributions from most to least are: tree (large); water (medium); "
                           "crop (extra small); \n")
    assert not lexicon.REGION_RE.search(no_position)
    assert T.attribute_context(counts, "classes_only") == "The land cover types present, in class order, are: water; tree; crop; \n"
    with pytest.raises(ValueError, match="unknown attributes variant 'no_colour'"):
        T.attribute_context(counts, "no_colour")


@pytest.fixture
def smoke_workdir(tmp_path):
    from cen.sources.demo import build_demo_tiles
    from cen.stats import compute_stats

    build_demo_tiles(tmp_path, smoke=True)
    compute_stats(tmp_path / "tiles.parquet", tmp_path / "stats.parquet", progress=False)
    return tmp_path


def test_cli_writes_parallel_caption_sets(smoke_workdir, capsys):
    from cen.cli import main
    from cen.stats import counts_from_table, read_stats

    wd = smoke_workdir
    assert main(["generate", "--workdir", str(wd)]) == 0
    assert main(["generate", "--workdir", str(wd), "--attributes", "no_size", "--attributes", "classes_only",
                 "--attributes", "full"]) == 0
    assert "captions_no_size.parquet (6 rows, attributes no_size)" in capsys.readouterr().out
    base = pd.read_parquet(wd / "captions.parquet")
    assert "attributes" not in base.columns
    counts = dict(zip(read_stats(wd / "stats.parquet")["tile_id"], counts_from_table(read_stats(wd / "stats.parquet"))))
    for variant in ("no_size", "classes_only", "full"):
        v = pd.read_parquet(wd / f"captions_{variant}.parquet")
        assert list(v.columns) == [*base.columns, "attributes"] and (v["attributes"] == variant).all()
        assert v[["tile_id", "paradigm"]].equals(base[["tile_id", "paradigm"]])
        for t, p, text in zip(v["tile_id"], v["paradigm"], v["text"]):
            seed = 0 if p == "gpt35" else 1_000_003
            assert text == caption_from_counts(counts[t], seed=seed, attributes=variant)
    assert pd.read_parquet(wd / "captions_full.parquet")["text"].equals(base["text"])


def test_llm_attribute_variant_through_a_local_server(smoke_workdir, monkeypatch):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from openai_server import OpenAIServer

    from cen.generate.runner import GenerateConfig, build_workdir_requests, generate_attributes_for_workdir
    from cen.prompting import load_template, messages_hash

    wd = smoke_workdir
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")
    requests = build_workdir_requests(wd, ["gpt35"], attributes="no_position")
    system = load_template(T.ATTRIBUTES_TEMPLATE).texts["system.txt"]
    assert all(r.messages[0]["content"] == system and r.template_version == f"{T.ATTRIBUTES_TEMPLATE}@1" for r in requests)
    assert all("from most to least" in r.messages[1]["content"] and "top left" not in r.messages[1]["content"]
               for r in requests)
    with OpenAIServer() as server:
        cfg = GenerateConfig(backend="openai", base_url=server.base_url, model="local-model", progress=False)
        res = generate_attributes_for_workdir(wd, "no_position", cfg, paradigms=["gpt35"], cache_path=wd / "c.sqlite")
        sent = {e["messages_sha"] for e in server.log if e.get("path", "").startswith("/v1/chat")}
        with pytest.raises(ValueError, match="gpt35 only"):
            generate_attributes_for_workdir(wd, "no_size", cfg, paradigms=["gpt35", "gpt4v"])
    assert sent == {messages_hash(r.messages) for r in requests}
    table = pd.read_parquet(wd / "captions_no_position.parquet")
    assert len(table) == len(requests) and (table["attributes"] == "no_position").all()
    assert table["status"].isin(["ok"]).all() and res.counts == {"ok": len(requests)}


def _fixed_counts(k: int) -> np.ndarray:
    """A ``(6, 12)`` counts table from arithmetic alone (no generator whose stream could change)."""
    counts = np.zeros((6, 12), np.int64)
    for r in range(1, 6):
        for c in range(12):
            counts[r, c] = ((r * 7 + c * 13 + k * 31) % 17) ** (1 + (c + k) % 3) * ((c * k + r) % 4 > 0)
    counts[0] = counts[1:5].sum(axis=0)
    return counts


GOLDEN_DIGEST = {"template-2": "009bb44c2a1111b1"}
"""sha256 (first 16 hex digits) of the captions of :func:`_fixed_counts` 0-39 in every variant at
two seeds, by :data:`cen.generate.template.TEMPLATE_CAPTIONER_VERSION`: a change of wording must
come with a new version (and a new digest here), never under the old one."""


def test_wording_is_pinned_by_version():
    import hashlib

    texts = [caption_from_counts(_fixed_counts(k), seed=s, attributes=v)
             for k in range(40) for v in ATTRIBUTE_VARIANTS for s in (0, 3)]
    assert len(set(texts)) > 100  # the inputs really exercise the wording
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    assert GOLDEN_DIGEST.get(T.TEMPLATE_CAPTIONER_VERSION) == digest


def test_split_modules_keep_every_name_importable_from_template():
    from cen.generate import template_sentences, template_wording

    public = ["TEMPLATE_CAPTIONER_VERSION", "MIN_PIXELS", "MENTION_SHARE", "ATTRIBUTE_VARIANTS", "PLANS",
              "ATTRIBUTES_TEMPLATE", "size_word", "attribute_context", "attribute_contexts",
              "caption_from_counts", "template_caption"]
    assert all(hasattr(T, name) for name in public)
    # the re-exported tables and helpers are the very objects the sentence builders use
    assert T._AMOUNTS is template_wording._AMOUNTS and T._article is template_wording._article
    assert T.MIN_PIXELS is template_sentences.MIN_PIXELS and T._Tile is template_sentences._Tile
    import cen.generate

    assert cen.generate.template_caption is T.template_caption
