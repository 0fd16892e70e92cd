"""The offline template captioner: deterministic, true to the statistics, clean wording."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cen.generate.template import caption_from_counts, size_word, template_caption
from cen.stats import region_counts


def _random_maps(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    maps = []
    for i in range(n):
        lab = np.zeros((256, 256), np.uint8)
        for _ in range(int(rng.integers(1, 6))):
            c = int(rng.integers(0, 12))
            y, x = rng.integers(0, 256, 2)
            h, w = rng.integers(5, 200, 2)
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
    assert any(template_caption(lab, seed=s) != a for s in range(1, 6))


def test_structure_dominant_regions_and_theme():
    lab = np.full((256, 256), 3, np.uint8)  # tree
    lab[:128, :128] = 1  # water fills the top left
    lab[200:, 200:] = 6  # crop in the bottom right corner
    text = template_caption(lab)
    assert text.startswith("The image")
    assert "Tree is the dominant land cover type" in text
    intro = r"(?:In|Looking at|Within|Across) the "
    found = re.findall(intro + r"(top left|top right|bottom left|bottom right|middle), ", text)
    assert found == ["top left", "top right", "bottom left", "bottom right", "middle"]
    top_left = re.search(intro + r"top left, ([^.]*)\.", text).group(1)
    assert top_left.startswith("water") and "extra large" in top_left and "tree" not in top_left
    bottom_right = re.search(intro + r"bottom right, ([^.]*)\.", text).group(1)
    assert bottom_right.startswith("tree") and "crop" in bottom_right
    assert text.split(". ")[-1].startswith("Overall")
    assert "wooded landscape" in text and "water" in text.split(". ")[-1]


def test_no_banned_colour_or_cross_image_words():
    lexicon = pytest.importorskip("cen.verify.lexicon")
    for lab in _random_maps(60, seed=3):
        text = template_caption(lab, seed=2)
        for paradigm in ("gpt35", "gpt4v"):
            pattern, _ = lexicon.banned_regex(paradigm)
            assert not pattern.search(text), text
        assert not lexicon.COLOUR_RE.search(text), text
        assert not lexicon.CROSS_IMAGE_RE.search(text), text


def test_label_consistency_is_perfect():
    score = pytest.importorskip("cen.verify.score")
    maps = _random_maps(120, seed=5)
    counts = region_counts(np.stack(maps))
    texts = [caption_from_counts(c, seed=7) for c in counts]
    table = score.score_table(texts, counts)
    for col in ("precision", "recall", "spatial_accuracy", "proportion_accuracy"):
        vals = table[col].dropna()
        assert len(vals) > 0 and (vals == 1.0).all(), (col, texts[int(table[col].fillna(1).idxmin())])


def test_size_words_are_algorithm1_buckets():
    assert [size_word(s) for s in (0.0, 0.09, 0.1, 0.19, 0.2, 0.49, 0.5, 0.79, 0.8, 1.0)] == [
        "extra small", "extra small", "small", "small", "medium", "medium", "large", "large",
        "extra large", "extra large",
    ]
    with pytest.raises(ValueError, match="outside 0-1"):
        size_word(1.5)


def test_empty_and_bad_input():
    assert "no labelled land cover" in template_caption(np.zeros((64, 64), np.uint8))
    lab = np.zeros((256, 256), np.uint8)
    lab[:10, :1] = 5  # 10 pixels: below the 20-pixel threshold everywhere
    text = template_caption(lab)
    assert "scattered specks" in text and "Grass" in text
    with pytest.raises(ValueError, match="shape"):
        template_caption(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="non-negative"):
        template_caption(-np.ones((6, 12), np.int64))
