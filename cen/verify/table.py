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

import numpy as np
import pandas as pd

from cen.verify import lexicon as lx
from cen.verify.checks import CheckConfig, check_captions, validate_counts
from cen.verify.fixes import apply_safe_fixes
from cen.verify.review import DecisionLog, caption_key, resolve
from cen.verify.score import score_table

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


def verify_captions(captions: pd.DataFrame, counts: np.ndarray, log: DecisionLog | str | Path,
                    config: CheckConfig = CheckConfig(), progress: bool = True,
                    source: str = "captions.parquet") -> VerificationResult:
    """Check, fix, resolve decisions and score a captions table.

    ``captions`` needs ``tile_id``, ``paradigm``, ``text``; ``counts`` is ``(N, 6, 12)`` aligned
    with its rows. Automatic fixes are appended to ``log`` (once: re-running adds nothing).
    """
    log = log if isinstance(log, DecisionLog) else DecisionLog(log)
    counts = validate_counts(counts, f"{source}: region counts")
    captions = captions.reset_index(drop=True)
    flags_original = check_captions(captions, counts, config, progress=progress, source=source)
    keys = [caption_key(t, lx.normalise_paradigm(p)) for t, p in zip(captions["tile_id"], captions["paradigm"])]
    dup = pd.Series(keys).duplicated()
    if dup.any():
        raise ValueError(f"{source}: caption key {keys[int(np.flatnonzero(dup)[0])]} (tile_id|paradigm) occurs twice")
    cross_rows = set(flags_original.loc[flags_original["code"] == "cross_image", "row"])
    history = log.history()
    unknown = sorted(set(history) - set(keys))
    if unknown:
        raise ValueError(f"{log.path}: decisions for {len(unknown)} caption(s) not in {source}, e.g. {unknown[0]}")
    n_fixes = np.zeros(len(captions), dtype=int)
    texts = [t if isinstance(t, str) else "" for t in captions["text"]]
    for i in sorted(cross_rows):
        fixed, fixes = apply_safe_fixes(texts[i])
        if fixes:
            n_fixes[i] = len(fixes)
            log.record_fix(keys[i], texts[i], fixed, fixes, history=history)
    accepted, status = [], []
    for i, key in enumerate(keys):
        text, st = resolve(texts[i], history.get(key, []))
        accepted.append(text)
        status.append(st)
    checked = captions.assign(text=[a if a is not None else "" for a in accepted])
    flags = check_captions(checked, counts, config, progress=progress, source=source)
    flags = flags[~flags["row"].isin([i for i, s in enumerate(status) if s == "rejected"])].reset_index(drop=True)
    codes_after = flags.groupby("row")["code"].agg(lambda c: sorted(set(c)))
    codes_before = flags_original.groupby("row")["code"].agg(lambda c: sorted(set(c)))
    scores = score_table([a or "" for a in accepted], counts, config, progress=False)
    table = captions.copy()
    table["key"] = keys
    table["accepted_text"] = accepted
    flags_list = [codes_after.get(i, []) for i in range(len(table))]
    final_status = []
    for i, st in enumerate(status):
        if st in ("unreviewed", "auto_fixed"):
            st = "needs_review" if flags_list[i] else ("auto_fixed" if st == "auto_fixed" else "clean")
        final_status.append(st)
    table["verification_status"] = final_status
    table["flags"] = flags_list
    table["n_flags"] = flags.groupby("row").size().reindex(range(len(table)), fill_value=0).to_numpy()
    table["flags_original"] = [codes_before.get(i, []) for i in range(len(table))]
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
    from cen.tiling import atomic_path

    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)
    return Path(path)


def read_captions(path: str | Path) -> pd.DataFrame:
    """Read ``captions.parquet``; raises naming the file and the missing column."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: captions table not found (run notebook 03 caption generation first)")
    df = pd.read_parquet(path)
    missing = [c for c in ("tile_id", "paradigm", "text") if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    return df


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
    counts = align_counts(captions, read_stats(workdir / "stats.parquet"), source=str(workdir / "stats.parquet"))
    log = DecisionLog(workdir / "decisions.jsonl")
    if decisions:
        if not reviewer:
            raise ValueError("reviewer decisions need a reviewer name")
        keys = [caption_key(t, lx.normalise_paradigm(p)) for t, p in zip(captions["tile_id"], captions["paradigm"])]
        apply_decisions(log, decisions, reviewer=reviewer, known_keys=keys)
    result = verify_captions(captions, counts, log, config, progress=progress, source=str(workdir / "captions.parquet"))
    write_verified(result.table, workdir / "captions_verified.parquet")
    return result
