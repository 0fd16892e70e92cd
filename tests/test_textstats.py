"""Caption statistics on small caption sets whose counts are known by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cen import textstats

CAPTIONS = pd.DataFrame({
    "version": ["gpt35", "gpt35", "gpt4v"],
    "split": ["train", "train", "test"],
    "text": [
        "The image shows trees and water. Developed area lies in the top left.",  # 13 words, 2 sentences
        "Bare land dominates! Small patches of grass, crop and snow-covered land-cover remain",  # 12 words, 2
        "This image is mostly forest; a river's bank (0.57 of it) is wetland.",  # 14 words, 1
    ],
})


def test_tokenize_rules():
    assert textstats.tokenize("Land-cover, the river's bank.") == ["land-cover", "the", "river's", "bank"]
    assert textstats.tokenize("'Quoted' -- 0.57 x_y") == ["quoted", "0", "57", "x", "y"]
    assert textstats.tokenize("Café — Über-große Fläche.") == ["café", "über-große", "fläche"]
    assert textstats.tokenize("") == []


@pytest.mark.parametrize("text,expected", [
    ("A b. C d!", 2), ("No terminator", 1), ("Value 0.57 here. Next", 2), ("...", 0), ("", 0),
    ("Hi... there?  ", 2), ("One.\nTwo.\tThree", 3), ("Café. Über", 2), ("Done. ?!", 1),
    ("He said (yes). Next", 2), ("x. , .", 1), ("a .b", 1), ("end 0.5", 1),
    # non-ASCII text takes the regex path: the same rule ("Done. ?!" is one sentence either way)
    ("Café. ?!", 1), ("Über . . Straße", 2), ("… . .", 0),
])
def test_count_sentences(text, expected):
    assert textstats.count_sentences(text) == expected


def test_byte_paths_equal_the_regex_paths_on_random_ascii():
    """The ASCII fast path for tokens is an optimisation: same answers as the regex rule."""
    rng = np.random.default_rng(7)
    alphabet = list("ab Z09.'-!?_,;:()\t\n") + ["...", " .", ". ", "--", "''", "x'", "'s"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet, size=int(rng.integers(0, 25))))
        lower = text.lower()
        fast = [t.decode() for t in textstats._tokens_lower(lower)]
        assert fast == textstats._tokens_unicode(lower), repr(text)
        # a leading no-break space routes the same caption through the regex path
        st_fast = textstats.caption_stats([text])[("all",)]
        st_regex = textstats.caption_stats(["\u00a0" + text])[("all",)]
        assert (st_fast.lengths, st_fast.sentences, st_fast.words) == (
            st_regex.lengths, st_regex.sentences, st_regex.words), repr(text)


def test_grouped_statistics_exact():
    stats = textstats.caption_stats(CAPTIONS, by=("version", "split"))
    assert list(stats) == [("gpt35", "train"), ("gpt4v", "test")]
    a, b = stats[("gpt35", "train")], stats[("gpt4v", "test")]
    assert a.n_captions == 2 and a.lengths == [13, 12] and a.sentences == [2, 2]
    assert b.lengths == [14] and b.sentences == [1]
    assert a.words["land"] == 1 and a.words["land-cover"] == 1 and a.words["the"] == 2
    assert a.vocabulary_size == len(set(textstats.tokenize(" ".join(CAPTIONS.text[:2]))))
    # classes: tree, water, developed area, bare land, grass, crop, snow ("snow-covered", the synonym
    # "snow covered" written with a hyphen)
    assert set(a.class_captions) == {"tree", "water", "developed area", "bare land", "grass", "crop", "snow"}
    assert all(v == 1 for v in a.class_captions.values())
    assert set(b.class_captions) == {"tree", "water", "wetland"}  # forest, river's (possessive), wetland
    summary = a.summary()
    assert summary["words_mean"] == 12.5 and summary["words_min"] == 12 and summary["n_words"] == 25


def test_class_mentions_count_every_occurrence():
    stats = textstats.caption_stats(["Water, water and a lake. Trees.", "No classes here."])
    st = stats[("all",)]
    assert st.class_mentions["water"] == 3 and st.class_captions["water"] == 1
    assert st.class_mentions["tree"] == 1
    table = textstats.class_mentions_table(stats)
    row = table[table["class"] == "water"].iloc[0]
    assert row["captions"] == 1 and row["share"] == 0.5 and row["mentions"] == 3
    assert len(table) == 11


AGREEMENT_CAPTIONS = [
    "A small town sits beside sandy fields in the top left.",
    "The built up area gives way to sparse vegetation and rocky ground; a water course runs south.",
    "Snow-covered peaks above a glacier, with meadows and a village in the middle.",
    "Dense woodland and shrubland surround a marsh; nothing else is present.",
    "Mangrove forests line the lagoon's shore.",
    "Mangrove forest in the north, a pine forest in the south.",
    "The mangrove forest's edge meets the sea.",
]


def test_class_mentions_agree_with_the_verification_parser():
    """Notebooks 04 and 05 read one synonym list: every caption names the same classes to both."""
    from cen import landcover
    from cen.verify import parse

    for text in AGREEMENT_CAPTIONS:
        ours = set(textstats.caption_stats([text])[("all",)].class_captions)
        theirs = {landcover.class_names("gpt35")[m.cls] for m in parse.parse_caption(text).mentions}
        assert ours == theirs, text
    st = textstats.caption_stats(AGREEMENT_CAPTIONS[:2])[("all",)]
    # town, fields, sandy -> developed area, crop, bare land; "built up area" one mention
    assert st.class_mentions["developed area"] == 2 and st.class_mentions["bare land"] == 3
    assert st.class_mentions["crop"] == 1 and st.phrase_mentions == {"developed area": 1, "bare land": 1}
    # "mangrove forest" names mangroves; its "forest" is no tree, a "pine forest" is
    mangroves = textstats.caption_stats(AGREEMENT_CAPTIONS[4:6])[("all",)]
    assert mangroves.class_captions == {"mangroves": 2, "water": 1, "tree": 1}  # lagoon; pine forest
    assert mangroves.class_mentions["tree"] == 1 and mangroves.class_mentions["mangroves"] == 2


def test_merge_equals_one_pass():
    one = textstats.caption_stats(CAPTIONS)[("all",)]
    a = textstats.caption_stats(CAPTIONS.iloc[:2])[("all",)]
    b = textstats.caption_stats(CAPTIONS.iloc[2:])[("all",)]
    merged = a.merge(b)
    assert merged.summary() == one.summary() and merged.words == one.words
    assert merged.class_captions == one.class_captions and merged.class_mentions == one.class_mentions
    assert a.n_captions == 2  # inputs unchanged


def test_chunks_equal_one_pass_and_strings_accepted():
    big = pd.concat([CAPTIONS] * 7, ignore_index=True)
    one = textstats.caption_stats(big, by="version")
    chunked = textstats.caption_stats((big.iloc[i:i + 4] for i in range(0, len(big), 4)), by="version")
    for key in one:
        assert one[key].summary() == chunked[key].summary()
        assert one[key].words == chunked[key].words
    strings = textstats.caption_stats(iter(big["text"].tolist()))
    assert strings[("all",)].n_captions == 21
    assert strings[("all",)].words == one[("gpt35",)].words + one[("gpt4v",)].words


def test_top_words_and_stopwords():
    st = textstats.caption_stats(["b a a c c c", "a"])[("all",)]
    top = st.top_words(2)
    assert top["word"].tolist() == ["a", "c"] and top["count"].tolist() == [3, 3]
    assert top["share"].tolist() == pytest.approx([3 / 7, 3 / 7])
    assert st.top_words(5, stopwords={"a"})["word"].tolist() == ["c", "b"]


def test_compare_two_sets():
    stats = textstats.caption_stats(CAPTIONS, by="version")
    cmp = textstats.compare(stats[("gpt35",)], stats[("gpt4v",)], names=("GPT-3.5", "GPT-4V"), top=5)
    assert cmp["summary"].loc["n_captions"].tolist() == [2, 1]
    words = cmp["words"].set_index("word")
    assert words.loc["the", "GPT-3.5 count"] == 2
    assert words["GPT-3.5 per 1k"].sum() <= 1000
    classes = cmp["classes"].set_index("class")
    assert classes.loc["wetland", "GPT-4V share"] == 1.0 and classes.loc["wetland", "GPT-3.5 share"] == 0.0


def test_bad_input_named():
    with pytest.raises(KeyError, match="captions.parquet: no column 'caption'"):
        textstats.caption_stats(CAPTIONS, text_col="caption", source="captions.parquet")
    bad = CAPTIONS.copy()
    bad.loc[1, "text"] = None
    with pytest.raises(ValueError, match=r"row 1 .*column 'text'"):
        textstats.caption_stats(bad)


def test_summary_table_and_plots(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    stats = textstats.caption_stats(CAPTIONS, by=("version", "split"))
    table = textstats.summary_table(stats, by=("version", "split"))
    assert table[["version", "split", "n_captions"]].values.tolist() == [["gpt35", "train", 2], ["gpt4v", "test", 1]]
    fig = textstats.plot_word_frequencies(stats, top=5, sharey=True)
    assert len(fig.axes) == 2 and fig.axes[0].get_shared_y_axes().joined(fig.axes[0], fig.axes[1])
    fig = textstats.plot_word_frequencies(stats, top=5, sharey=False)
    assert not fig.axes[0].get_shared_y_axes().joined(fig.axes[0], fig.axes[1])
    ax = textstats.plot_length_distribution(stats)
    assert len(ax.get_legend().get_texts()) == 2
    cloud = textstats.word_cloud(stats[("gpt35", "train")], width=200, height=100)
    image = np.asarray(cloud.to_image())
    assert image.shape == (100, 200, 3) and (image < 250).any()
    assert "water" in cloud.words_ or "image" in cloud.words_


def test_word_frequencies_title():
    import matplotlib

    matplotlib.use("Agg")
    stats = textstats.caption_stats(CAPTIONS, by="version")
    fig = textstats.plot_word_frequencies(stats, top=5, stopwords={"the"}, title="without stop words")
    assert fig._suptitle.get_text() == "without stop words"
    assert "the" not in [t.get_text() for t in fig.axes[0].get_xticklabels()]


def test_class_mention_shares():
    stats = textstats.caption_stats(CAPTIONS, by="version")
    shares = textstats.class_mention_shares(stats)
    assert list(shares.columns) == ["gpt35", "gpt4v"] and len(shares) == len(textstats.CLASS_WORDS)
    # gpt35: one of its two captions names trees, the other bare land; gpt4v's caption says forest and wetland
    assert shares.loc["tree", "gpt35"] == 0.5 and shares.loc["tree", "gpt4v"] == 1.0
    assert shares.loc["bare land", "gpt35"] == 0.5 and shares.loc["wetland", "gpt4v"] == 1.0
    assert shares.loc["mangroves"].tolist() == [0.0, 0.0]


def test_plot_word_clouds_returns_figure():
    import matplotlib

    matplotlib.use("Agg")
    stats = textstats.caption_stats(CAPTIONS, by=("version", "split"))
    fig = textstats.plot_word_clouds(stats, width=200, height=100)
    assert [ax.get_title() for ax in fig.axes] == ["gpt35 / train: 2 captions", "gpt4v / test: 1 captions"]
    image = fig.axes[0].get_images()[0].get_array()
    assert image.shape == (100, 200, 3) and (np.asarray(image) < 250).any()


def test_compare_two_sets_falls_back_to_splits():
    versions = textstats.compare_two_sets(CAPTIONS, by=["version", "split"], top=3)
    assert list(versions["summary"].columns) == ["gpt35", "gpt4v"]
    assert versions["summary"].loc["n_captions"].tolist() == [2, 1]
    one_version = CAPTIONS.assign(version="gpt35", split=["train", "test", "test"])
    splits = textstats.compare_two_sets(one_version, by=["version", "split"], top=3)
    assert list(splits["summary"].columns) == ["test", "train"]  # groups in sorted order
    assert splits["summary"].loc["n_captions"].tolist() == [2, 1]
    assert textstats.compare_two_sets(CAPTIONS.assign(split="all"), by=["split"]) is None
    known = textstats.caption_stats(CAPTIONS, by="version")
    again = textstats.compare_two_sets(CAPTIONS, first=known, top=3)
    pd.testing.assert_frame_equal(again["words"], versions["words"])
