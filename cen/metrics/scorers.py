"""The Python scorers on tokenized text: BLEU statistics, ROUGE-L, CIDEr-D."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

METRIC_KEYS: tuple[str, ...] = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")
"""Every metric, under pycocoevalcap's keys, in table order."""
BLEU_KEYS = METRIC_KEYS[:4]


def bleu_statistics(gts: Mapping[str, list[str]], res: Mapping[str, list[str]], ids: Sequence[str]) -> np.ndarray:
    """Per-image BLEU sufficient statistics, shape (N, 10) int64:
    candidate length, closest reference length, n-gram counts (n = 1..4), clipped matches (n = 1..4).

    Uses pycocoevalcap's own n-gram cooking (``bleu_scorer.cook_refs``/``cook_test``) and its
    ``closest`` reference-length rule.
    """
    from pycocoevalcap.bleu.bleu_scorer import cook_refs, cook_test

    stats = np.zeros((len(ids), 10), dtype=np.int64)
    for i, k in enumerate(ids):
        comps = cook_test(res[k][0], cook_refs(gts[k]))
        testlen = comps["testlen"]
        reflen = min((abs(ln - testlen), ln) for ln in comps["reflen"])[1]
        stats[i, 0], stats[i, 1] = testlen, reflen
        stats[i, 2:6] = comps["guess"]
        stats[i, 6:10] = comps["correct"]
    return stats


def bleu_from_statistics(stats: np.ndarray) -> np.ndarray:
    """BLEU-1..4 from statistics rows as pycocoevalcap computes them.

    ``stats`` shape (..., 10) (already summed for a corpus score); returns shape (..., 4).
    """
    small, tiny = 1e-9, 1e-15
    stats = np.asarray(stats, dtype=np.float64)
    testlen, reflen = stats[..., 0], stats[..., 1]
    out = np.empty(stats.shape[:-1] + (4,))
    bleu = np.ones(stats.shape[:-1])
    for k in range(4):
        bleu = bleu * (stats[..., 6 + k] + tiny) / (stats[..., 2 + k] + small)
        out[..., k] = bleu ** (1.0 / (k + 1))
    ratio = (testlen + tiny) / (reflen + small)
    penalty = np.where(ratio < 1, np.exp(1 - 1 / np.where(ratio < 1, ratio, 1.0)), 1.0)
    return out * penalty[..., None]


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (bit-parallel, exact)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    masks: dict[str, int] = {}
    for i, tok in enumerate(a):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for tok in b:
        u = v & masks.get(tok, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - bin(v).count("1")


def rouge_l_scores(gts: Mapping[str, list[str]], res: Mapping[str, list[str]], ids: Sequence[str]) -> np.ndarray:
    """Per-image ROUGE-L (beta 1.2, max precision and max recall over references), as pycocoevalcap."""
    beta = 1.2
    out = np.empty(len(ids))
    for i, k in enumerate(ids):
        token_c = res[k][0].split(" ")
        prec, rec = [], []
        for ref in gts[k]:
            token_r = ref.split(" ")
            lcs = lcs_length(token_r, token_c)
            prec.append(lcs / float(len(token_c)))
            rec.append(lcs / float(len(token_r)))
        p, r = max(prec), max(rec)
        out[i] = ((1 + beta**2) * p * r) / float(r + beta**2 * p) if p != 0 and r != 0 else 0.0
    return out


def cider_scores(gts: Mapping[str, list[str]], res: Mapping[str, list[str]], ids: Sequence[str]) -> np.ndarray:
    """Per-image CIDEr-D with document frequencies from the references of ``ids`` (pycocoevalcap's scorer)."""
    from pycocoevalcap.cider.cider_scorer import CiderScorer

    scorer = CiderScorer(n=4, sigma=6.0)
    for k in ids:
        scorer += (res[k][0], gts[k])
    _, scores = scorer.compute_score()
    return np.asarray(scores, dtype=np.float64)
