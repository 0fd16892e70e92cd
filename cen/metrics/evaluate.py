"""evaluate: every metric over validated input, bootstrap intervals and the paired test."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from cen.metrics.java import MetricsError, find_java, java_env_problem, java_missing_message
from cen.metrics.meteor import default_meteor_processes, meteor, meteor_from_statistics
from cen.metrics.readers import CaptionSet, MetricsInputError, read_candidates, read_references, validate
from cen.metrics.scorers import BLEU_KEYS, METRIC_KEYS, bleu_from_statistics, bleu_statistics, cider_scores, rouge_l_scores
from cen.metrics.spice import spice, spice_unavailable_reason
from cen.metrics.tokens import _flatten, ptb_tokenize, python_tokenize


@dataclass
class Evaluation:
    """Result of :func:`evaluate`.

    ``scores``: corpus score per computed metric (pycocoevalcap keys). ``per_image``: one row per
    image id (index ``image_id``), one column per computed metric. ``not_computed``: metric ->
    reason. ``tokenizer``: ``"ptb"`` (Java PTB, as pycocoevalcap) or ``"python-approx"``.
    ``bleu_stats`` (N, 10) and ``meteor_stats`` (N lines) are the sufficient statistics the
    bootstrap resamples; ``tokenized`` holds the tokenized references and candidates.
    """

    scores: dict[str, float]
    per_image: pd.DataFrame
    not_computed: dict[str, str]
    tokenizer: str
    notes: list[str]
    seconds: dict[str, float]
    bleu_stats: np.ndarray | None = None
    meteor_stats: list[str] | None = None
    tokenized: tuple[dict[str, list[str]], dict[str, list[str]]] | None = None
    java: str | None = None

    @property
    def ids(self) -> list[str]:
        return list(self.per_image.index)

    def resampled(self, weights: np.ndarray, meteor_timeout: float = 120.0) -> pd.DataFrame:
        """Corpus scores for each row of image weights (R, N) (bootstrap counts); columns = metrics."""
        w = np.asarray(weights, dtype=np.float64)
        out: dict[str, np.ndarray] = {}
        if self.bleu_stats is not None:
            b = bleu_from_statistics(w @ self.bleu_stats.astype(np.float64))
            for k, key in enumerate(BLEU_KEYS):
                out[key] = b[:, k]
        if self.meteor_stats is not None and self.java is not None:
            rows = np.array([[float(x) for x in s.split()] for s in self.meteor_stats])
            out["METEOR"] = meteor_from_statistics(w @ rows, java=self.java, timeout=meteor_timeout)
        for key in ("ROUGE_L", "CIDEr", "SPICE"):
            if key in self.per_image:
                out[key] = w @ self.per_image[key].to_numpy(dtype=np.float64) / w.sum(axis=1)
        cols = [k for k in METRIC_KEYS if k in out]
        return pd.DataFrame({k: out[k] for k in cols})

    def bootstrap(self, resamples: int = 1000, *, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
        """Percentile bootstrap intervals over images: columns ``score``, ``low``, ``high``, ``se``.

        ``resamples`` draws of N images with replacement (fixed ``seed``); each corpus score is
        recomputed from sufficient statistics as the module docstring describes.
        """
        weights = bootstrap_weights(len(self.per_image), resamples, seed)
        # row 0 weighs every image once: the sufficient statistics must give back the corpus scores
        boot = self.resampled(np.vstack([np.ones((1, weights.shape[1]), dtype=weights.dtype), weights]))
        deviation = max(abs(boot[k].iloc[0] - self.scores[k]) for k in boot)
        if deviation > 1e-9:
            raise MetricsError(f"bootstrap: the statistics do not reproduce the corpus scores (off by {deviation:.3g})")
        boot = boot.iloc[1:]
        alpha = (1 - level) / 2
        rows = {}
        for key in boot:
            rows[key] = {"score": self.scores[key], "low": float(np.quantile(boot[key], alpha)),
                         "high": float(np.quantile(boot[key], 1 - alpha)), "se": float(boot[key].std(ddof=1))}
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "metric"
        table.attrs.update(resamples=resamples, seed=seed, level=level, method="percentile bootstrap over images",
                           full_sample_deviation=float(deviation))
        return table


def bootstrap_weights(n: int, resamples: int, seed: int = 0) -> np.ndarray:
    """(resamples, n) int32 counts of each image in each bootstrap resample (sum n per row)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.int32)


def evaluate(
    references: Mapping[Any, Any] | CaptionSet,
    candidates: Mapping[Any, Any] | None = None,
    metrics: Iterable[str] | None = None,
    *,
    missing: str = "error",
    extra: str = "error",
    empty: str = "error",
    meteor_processes: int | None = None,
    meteor_timeout: float = 120.0,
    tokenize: bool = True,
    keep_tokens: bool = False,
) -> Evaluation:
    """Score ``candidates`` (image id -> caption) against ``references`` (image id -> captions).

    ``metrics``: any of :data:`METRIC_KEYS` (``"Bleu"`` means all four; default all). Input is
    checked by :func:`validate` with the given policies. ``tokenize=False`` takes the captions as
    already tokenized. METEOR uses ``meteor_processes`` processes (default
    :func:`default_meteor_processes`: more only for large inputs) and gives up when a process answers nothing for ``meteor_timeout`` seconds.
    Java missing, SPICE jars missing or a SPICE failure are reported in ``not_computed``;
    the other metrics still run.
    """
    wanted = _wanted_metrics(metrics)
    cs = references if isinstance(references, CaptionSet) else validate(
        references, candidates or {}, missing=missing, extra=extra, empty=empty)
    ids = cs.ids
    seconds: dict[str, float] = {}
    not_computed: dict[str, str] = {}
    notes = list(cs.notes)
    java = find_java(warn=False)  # a $CEN_JAVA naming no file goes into the notes instead
    if java is not None and java_env_problem():
        notes.append(java_env_problem())  # type: ignore[arg-type]

    t0 = time.perf_counter()
    flat_refs = [r for k in ids for r in cs.references[k]]
    flat = flat_refs + [cs.candidates[k] for k in ids]
    if not tokenize:
        tokens, tokenizer = [_flatten(t) for t in flat], "none (pre-tokenized)"
    elif java is not None:
        tokens, tokenizer = ptb_tokenize(flat, java=java), "ptb"
    else:
        tokens, tokenizer = python_tokenize(flat), "python-approx"
        notes.append(java_missing_message())
    gts: dict[str, list[str]] = {}
    pos = 0
    for k in ids:
        m = len(cs.references[k])
        gts[k] = tokens[pos:pos + m]
        pos += m
    res = {k: [tokens[pos + i]] for i, k in enumerate(ids)}
    seconds["tokenize"] = time.perf_counter() - t0

    background: dict[str, threading.Thread] = {}
    outcome: dict[str, Any] = {}

    def run_bg(key: str, fn: Callable[[], Any]) -> None:
        def target() -> None:
            t = time.perf_counter()
            try:
                outcome[key] = fn()
            except BaseException as exc:
                outcome[key] = exc
            seconds[key] = time.perf_counter() - t
        background[key] = threading.Thread(target=target, daemon=True)
        background[key].start()

    if "METEOR" in wanted:
        if java is None:
            not_computed["METEOR"] = java_missing_message()
        else:
            procs = meteor_processes or default_meteor_processes(len(ids))
            run_bg("METEOR", lambda: meteor(gts, res, ids, java=java, processes=procs, timeout=meteor_timeout))
    if "SPICE" in wanted:
        reason = spice_unavailable_reason(java)
        if reason:
            not_computed["SPICE"] = reason
        else:
            run_bg("SPICE", lambda: spice(gts, res, ids, java=java))  # type: ignore[arg-type]

    scores: dict[str, float] = {}
    per_image: dict[str, np.ndarray] = {}
    bleu_stats = None
    if any(k in wanted for k in BLEU_KEYS):
        t = time.perf_counter()
        bleu_stats = bleu_statistics(gts, res, ids)
        corpus = bleu_from_statistics(bleu_stats.sum(axis=0))
        each = bleu_from_statistics(bleu_stats)
        for k, key in enumerate(BLEU_KEYS):
            if key in wanted:
                scores[key], per_image[key] = float(corpus[k]), each[:, k]
        seconds["Bleu"] = time.perf_counter() - t
    if "ROUGE_L" in wanted:
        t = time.perf_counter()
        per_image["ROUGE_L"] = rouge_l_scores(gts, res, ids)
        scores["ROUGE_L"] = float(np.mean(per_image["ROUGE_L"]))
        seconds["ROUGE_L"] = time.perf_counter() - t
    if "CIDEr" in wanted:
        t = time.perf_counter()
        per_image["CIDEr"] = cider_scores(gts, res, ids)
        scores["CIDEr"] = float(np.mean(per_image["CIDEr"]))
        seconds["CIDEr"] = time.perf_counter() - t

    meteor_stats = None
    for key, thread in background.items():
        thread.join()
        value = outcome[key]
        if key == "SPICE" and isinstance(value, BaseException):
            not_computed["SPICE"] = f"SPICE failed: {value}"
            continue
        if isinstance(value, BaseException):
            raise value
        if key == "METEOR":
            scores["METEOR"], per_image["METEOR"], meteor_stats = value
        else:
            scores[key], per_image[key] = value
    seconds["total"] = time.perf_counter() - t0

    order = [k for k in METRIC_KEYS if k in per_image]
    table = pd.DataFrame({k: per_image[k] for k in order}, index=pd.Index(ids, name="image_id"))
    return Evaluation(
        scores={k: scores[k] for k in order}, per_image=table, not_computed=not_computed, tokenizer=tokenizer,
        notes=notes, seconds=seconds, bleu_stats=bleu_stats if any(k in wanted for k in BLEU_KEYS) else None,
        meteor_stats=meteor_stats, tokenized=(gts, res) if keep_tokens else None, java=java,
    )


def _wanted_metrics(metrics: Iterable[str] | None) -> list[str]:
    if metrics is None:
        return list(METRIC_KEYS)
    if isinstance(metrics, str):
        metrics = [metrics]
    wanted: list[str] = []
    lookup = {k.lower(): k for k in METRIC_KEYS}
    for m in metrics:
        if m.lower() in ("bleu", "bleu_all"):
            wanted += list(BLEU_KEYS)
        elif m.lower() in lookup:
            wanted.append(lookup[m.lower()])
        else:
            raise ValueError(f"unknown metric {m!r}; choose from {', '.join(METRIC_KEYS)} or 'Bleu'")
    return [k for k in METRIC_KEYS if k in wanted]


def paired_test(
    a: Evaluation, b: Evaluation, *, resamples: int = 1000, seed: int = 0, level: float = 0.95,
) -> pd.DataFrame:
    """Paired bootstrap comparison of system ``a`` and ``b`` scored on the same images.

    Both get the same resamples; per metric: ``a``, ``b``, ``diff`` (a - b), its percentile
    interval, and a two-sided p-value (twice the smaller share of resamples with diff <= 0 or
    >= 0, at most 1).
    """
    if list(a.per_image.index) != list(b.per_image.index):
        if set(a.per_image.index) != set(b.per_image.index):
            raise MetricsInputError("paired_test: the two systems were scored on different images")
        raise MetricsInputError("paired_test: the two systems list the same images in a different order")
    weights = bootstrap_weights(len(a.per_image), resamples, seed)
    ba, bb = a.resampled(weights), b.resampled(weights)
    alpha = (1 - level) / 2
    rows = {}
    for key in ba.columns.intersection(bb.columns):
        d = ba[key].to_numpy() - bb[key].to_numpy()
        p = min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0)))
        rows[key] = {"a": a.scores[key], "b": b.scores[key], "diff": a.scores[key] - b.scores[key],
                     "low": float(np.quantile(d, alpha)), "high": float(np.quantile(d, 1 - alpha)), "p_value": float(p)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "metric"
    return table


def evaluate_files(
    references: str | Path, candidates: str | Path, metrics: Iterable[str] | None = None, *,
    duplicates: str = "error", **kwargs: Any,
) -> Evaluation:
    """:func:`evaluate` on two caption files (formats of :func:`read_records`); errors name the files."""
    refs = read_references(references)
    cands = read_candidates(candidates, duplicates=duplicates)
    policies = {k: kwargs.pop(k) for k in ("missing", "extra", "empty") if k in kwargs}
    cs = validate(refs, cands, references_source=str(references), candidates_source=str(candidates), **policies)
    return evaluate(cs, None, metrics, **kwargs)
