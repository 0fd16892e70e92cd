"""Verification of a whole captions table: checks, safe fixes, decisions, the exported table.

:func:`verify_captions` is what notebook 04 runs: check every caption, apply the safe
cross-image fixes (logging each), resolve the decision log into accepted texts, re-check the
accepted texts, score their label consistency and return the verified table
(``captions_verified.parquet``) plus the flags before and after.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from cen.tables import read_table, write_parquet
from cen.verify import lexicon as lx
from tqdm.auto import tqdm

from cen.verify.checks import (
    CheckConfig, Flag, RegionTable, _require, check_row, flags_frame, paradigms_of, table_checks, validate_counts,
)
from cen.verify.fixes import apply_safe_fixes
from cen.verify.parse import ParsedCaption, parse_caption
from cen.verify.review import DecisionLog, caption_keys, resolve
from cen.verify.score import SCORE_COLUMNS, _score_parsed

if TYPE_CHECKING:
    from matplotlib.figure import Figure

VERIFY_VERSION = "verify-1"
"""Written to ``captions_verified.parquet`` as ``verify_version``."""

VERIFIED_COLUMNS = ["key", "accepted_text", "verification_status", "flags", "n_flags", "flags_original",
                    "n_auto_fixes", "history", "consistency", "label_precision", "label_recall",
                    "spatial_accuracy", "verify_version"]
"""Columns :func:`verify_captions` adds to the captions table."""


@dataclass
class VerificationResult:
    table: pd.DataFrame
    """The captions table plus :data:`VERIFIED_COLUMNS`, one row per caption."""
    flags_original: pd.DataFrame
    """Findings on the texts as generated (:data:`~cen.verify.checks.FLAG_COLUMNS`)."""
    flags: pd.DataFrame
    """Findings on the accepted texts (after fixes and decisions)."""

    def review_queue(self) -> pd.DataFrame:
        """Captions still needing a human decision, most findings first, with their findings."""
        t = self.table
        queue = t[t["verification_status"] == "needs_review"]
        return queue.sort_values("n_flags", ascending=False, kind="stable")

    def counts_per_check(self) -> pd.DataFrame:
        """Captions flagged per check code, before and after fixes/decisions."""
        from cen.verify.checks import CHECK_CODES

        def per(flags: pd.DataFrame) -> pd.Series:
            return flags.drop_duplicates(["row", "code"])["code"].value_counts()

        before, after = per(self.flags_original), per(self.flags)
        out = pd.DataFrame({"check": list(CHECK_CODES), "meaning": list(CHECK_CODES.values())})
        out["captions_flagged"] = out["check"].map(before).fillna(0).astype(int)
        out["after_fixes_and_review"] = out["check"].map(after).fillna(0).astype(int)
        return out


def plot_counts_per_check(per_check: pd.DataFrame, title: str = "", ax=None) -> Figure:
    """Horizontal bars of :meth:`VerificationResult.counts_per_check` (before and after fixes and
    review), one bar pair per check; draws on ``ax`` if given. Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    data = per_check.set_index("check")[["captions_flagged", "after_fixes_and_review"]]
    data.columns = ["as generated", "after fixes and review"]
    data.plot.barh(ax=ax)
    ax.invert_yaxis()
    ax.set_xlim(0, max(1, int(data.to_numpy().max())) * 1.05)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("captions flagged")
    ax.set_ylabel("")
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    ax.figure.tight_layout()
    return ax.figure


def flags_by_paradigm(flags: pd.DataFrame, paradigms: Sequence[str]) -> pd.DataFrame:
    """Captions flagged per check (rows, ``code``) and paradigm (columns), then the same as a
    percentage of each paradigm's captions (columns ``"<paradigm> (%)"``).

    ``flags``: findings with ``row``, ``paradigm``, ``code`` (:func:`~cen.verify.checks.check_texts`);
    ``paradigms``: the paradigm (or release version, ``"35"`` / ``"4v"``) of every caption checked.
    """
    counts = (flags.drop_duplicates(["row", "code"]).groupby(["paradigm", "code"]).size()
              .unstack(0, fill_value=0))
    n_by = pd.Series([lx.normalise_paradigm(p) for p in paradigms]).value_counts()
    return counts.assign(**{f"{p} (%)": 100 * counts[p] / n_by[p] for p in counts.columns})


def flag_count_dict(by_paradigm: pd.DataFrame) -> dict[str, int]:
    """``{"<paradigm>:<code>": captions flagged}`` from the count columns of :func:`flags_by_paradigm`."""
    counts = by_paradigm[[c for c in by_paradigm.columns if not str(c).endswith(" (%)")]]
    return {f"{p}:{c}": int(n) for (c, p), n in counts.stack().items()}


def verify_captions(captions: pd.DataFrame, counts: np.ndarray, log: DecisionLog | str | Path,
                    config: CheckConfig = CheckConfig(), progress: bool = True,
                    source: str = "captions.parquet") -> VerificationResult:
    """Check, fix, resolve decisions and score a captions table.

    ``captions`` needs ``tile_id``, ``paradigm``, ``text``; ``counts`` is ``(N, 6, 12)`` aligned
    with its rows. Automatic fixes are appended to ``log`` (once: re-running adds nothing). Each
    caption is parsed once; only texts changed by a fix or a reviewer are checked again.
    """
    log = log if isinstance(log, DecisionLog) else DecisionLog(log)
    _require(captions, ["tile_id", "paradigm", "text"], source)
    counts = validate_counts(counts, f"{source}: region counts")
    if len(counts) != len(captions):
        raise ValueError(f"{source}: {len(captions)} captions but {len(counts)} region-count rows")
    captions = captions.reset_index(drop=True)
    texts = [t if isinstance(t, str) else "" for t in captions["text"]]
    tiles = captions["tile_id"].tolist()
    paradigms = paradigms_of(captions, source)
    keys = caption_keys(captions)
    dup = pd.Series(keys).duplicated()
    if dup.any():
        raise ValueError(f"{source}: caption key {keys[int(np.flatnonzero(dup)[0])]} (tile_id|paradigm) occurs twice")
    history = log.history()
    unknown = sorted(set(history) - set(keys))
    if unknown:
        raise ValueError(f"{log.path}: decisions for {len(unknown)} caption(s) not in {source}, e.g. {unknown[0]}")

    tabs = [RegionTable(c) for c in counts]
    original: dict[int, list[Flag]] = {}
    parsed: list[ParsedCaption] = []
    n_fixes = np.zeros(len(texts), dtype=int)
    for i in tqdm(range(len(texts)), desc="verifying captions", disable=not progress, unit="caption"):
        flags, p = check_row(texts[i], paradigms[i], tabs[i], config)
        original[i] = flags
        parsed.append(p)
        if any(f.code == "cross_image" for f in flags):
            fixed, fixes = apply_safe_fixes(texts[i])
            if fixes:
                n_fixes[i] = len(fixes)
                log.record_fix(keys[i], texts[i], fixed, fixes, history=history)
    if "status" in captions.columns:  # say why a caption is missing (failed, unsplittable answer)
        errors = captions["error"].tolist() if "error" in captions.columns else [None] * len(texts)
        for i, st in enumerate(captions["status"].tolist()):
            if original[i] and original[i][0].code == "empty":
                why = f"; {errors[i]}" if isinstance(errors[i], str) and errors[i] else ""
                original[i][0] = Flag("empty", f"no caption (generation status {st!r}{why})", 0, 0)
    for i, f in table_checks(texts, paradigms, tiles, counts=counts):
        original[i].append(f)
    flags_original = flags_frame(original, tiles, paradigms)

    accepted, status = [], []
    for i, key in enumerate(keys):
        text, st = resolve(texts[i], history.get(key, []))
        accepted.append(text)
        status.append(st)
    after: dict[int, list[Flag]] = {}
    for i, text in enumerate(accepted):
        if text is None:
            parsed[i] = parse_caption("")
        elif text != texts[i]:
            after[i], parsed[i] = check_row(text, paradigms[i], tabs[i], config)
        else:
            after[i] = [f for f in original[i] if f.code not in ("duplicate", "length_outlier")]
    live = [i for i in range(len(texts)) if accepted[i] is not None]
    for j, f in table_checks([accepted[i] for i in live], [paradigms[i] for i in live], [tiles[i] for i in live],
                             counts=counts[live]):
        after[live[j]].append(f)
    flags = flags_frame(after, tiles, paradigms)
    scores = pd.DataFrame([_score_parsed(parsed[i], tabs[i], config, 0.05, 20) for i in range(len(texts))],
                          columns=SCORE_COLUMNS)

    table = captions.copy()
    table["key"] = keys
    table["accepted_text"] = accepted
    flags_list = [sorted({f.code for f in after.get(i, [])}) for i in range(len(table))]
    final_status = []
    for i, st in enumerate(status):
        if st in ("unreviewed", "auto_fixed"):
            st = "needs_review" if flags_list[i] else ("auto_fixed" if st == "auto_fixed" else "clean")
        final_status.append(st)
    table["verification_status"] = final_status
    table["flags"] = flags_list
    table["n_flags"] = [len(after.get(i, [])) for i in range(len(table))]
    table["flags_original"] = [sorted({f.code for f in original[i]}) for i in range(len(table))]
    table["n_auto_fixes"] = n_fixes
    table["history"] = [json.dumps(history.get(k, []), ensure_ascii=False) for k in keys]
    table["consistency"] = scores["score"].to_numpy()
    table["label_precision"] = scores["precision"].to_numpy()
    table["label_recall"] = scores["recall"].to_numpy()
    table["spatial_accuracy"] = scores["spatial_accuracy"].to_numpy()
    table["verify_version"] = VERIFY_VERSION
    return VerificationResult(table=table, flags_original=flags_original, flags=flags)


def write_verified(table: pd.DataFrame, path: str | Path) -> Path:
    """Write ``captions_verified.parquet`` atomically."""
    return write_parquet(table, path)


def read_captions(path: str | Path) -> pd.DataFrame:
    """Read ``captions.parquet``; raises naming the file and the missing column."""
    return read_table(path, ("tile_id", "paradigm", "text"), what="captions table",
                      made_by="notebook 03 caption generation", error=ValueError)


def align_counts(captions: pd.DataFrame, stats_table: pd.DataFrame, source: str = "stats.parquet") -> np.ndarray:
    """``(N, 6, 12)`` region counts for each caption row, looked up by ``tile_id`` in a stats table.

    Raises ``ValueError`` naming the stats file and the first caption tile it does not cover.
    """
    from cen.stats import counts_from_table

    if "tile_id" not in stats_table.columns:
        raise ValueError(f"{source}: missing column 'tile_id'")
    counts = counts_from_table(stats_table, source=source)
    index = pd.Index(stats_table["tile_id"].astype(str))
    if not index.is_unique:
        raise ValueError(f"{source}: tile_id {index[index.duplicated()][0]!r} occurs twice")
    pos = index.get_indexer(captions["tile_id"].astype(str))
    if (pos < 0).any():
        missing = captions["tile_id"].astype(str).to_numpy()[pos < 0]
        raise ValueError(f"{source}: no statistics for {len(missing)} captioned tile(s), e.g. {missing[0]!r}")
    return counts[pos]


def verify_workdir(workdir: str | Path, decisions: list[dict] | None = None, reviewer: str | None = None,
                   config: CheckConfig = CheckConfig(), progress: bool = True) -> VerificationResult:
    """Notebook 04 without the notebook: ``captions.parquet`` + ``stats.parquet`` in ``workdir`` ->
    ``captions_verified.parquet`` + ``decisions.jsonl`` (reviewer ``decisions`` appended first)."""
    from cen.stats import read_stats
    from cen.verify.review import apply_decisions

    workdir = Path(workdir)
    captions = read_captions(workdir / "captions.parquet")
    if not len(captions):
        raise ValueError(f"{workdir / 'captions.parquet'}: the captions table has no rows, so there is nothing "
                         "to verify (run cen generate first)")
    counts = align_counts(captions, read_stats(workdir / "stats.parquet"), source=str(workdir / "stats.parquet"))
    log = DecisionLog(workdir / "decisions.jsonl")
    if decisions:
        if not reviewer:
            raise ValueError("reviewer decisions need a reviewer name")
        apply_decisions(log, decisions, reviewer=reviewer, known_keys=caption_keys(captions))
    result = verify_captions(captions, counts, log, config, progress=progress, source=str(workdir / "captions.parquet"))
    write_verified(result.table, workdir / "captions_verified.parquet")
    return result
