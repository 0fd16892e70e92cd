"""What ``cen generate`` (and notebook 03) prints about a run: captions and requests apart, the
money against the run's budget, one line per failure reason with what to do, and the ledger.

A caption "has an answer" when its status is one of :data:`~cen.generate.views.OK_STATUSES`;
a run did what was asked only when every asked tile x paradigm has one (:func:`missing_rows`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import pandas as pd

from cen.generate.views import OK_STATUSES

if TYPE_CHECKING:
    from cen.generate.runner import GenerationResult

ADVICE = {
    "budget_stopped": "raise --budget (it caps the run's total over all invocations; see cen generate --ledger)",
    "http_401": "check the API key in the environment variable named by --api-key-env",
    "http_403": "check that the key may use this model",
    "http_404": "check --model (and --base-url)",
    "connection_refused": "check --base-url and that the server is up",
    "dns": "check the host name in --base-url",
    "unsplittable": "the answers are kept in raw_text; use the single-tile template (templates={'gpt4v': "
                    "'cen-gpt4v-single-v2'}) or review them in notebook 04",
    "not_sent": "run the same command to resume",
}
"""What to do, per failure reason (anything else: rerun to resume)."""


def reason_of(status: str, error: str | None) -> str:
    """The failure reason of a caption row: its status, or for ``failed`` / ``stopped`` the error's code
    (``http_404``, ``timeout``, ``malformed``, ``connection_refused`` ...)."""
    if status in ("failed", "stopped") and isinstance(error, str) and error:
        code = error.removeprefix("stopped: ").split(":", 1)[0].strip()
        return f"{status} {code}" if status == "stopped" else code
    return status


def advice_for(reason: str) -> str:
    return ADVICE.get(reason.removeprefix("stopped ").strip(), "rerun the same command to resume (retries what failed)")


def missing_rows(merged: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """The asked captions without an answer: rows of ``current`` (this invocation's captions, one per
    asked tile x paradigm) unless they have an answer, or ``merged`` (the table written) holds an
    answer for the same tile, paradigm and request (same ``cache_key``: an answer of another model
    or template does not count)."""
    def keys(frame: pd.DataFrame) -> pd.Series:
        return frame["tile_id"].astype(str) + "|" + frame["paradigm"].astype(str)

    answered = merged[merged["status"].isin(OK_STATUSES)]
    have = set(keys(answered) + "|" + answered["cache_key"].astype(str)) if "cache_key" in answered else set()
    ok_now = current["status"].isin(OK_STATUSES).to_numpy()
    in_table = (keys(current) + "|" + current["cache_key"].astype(str)).isin(have).to_numpy()
    return current[~ok_now & ~in_table]


def failure_lines(missing: pd.DataFrame, *, n_ids: int = 3) -> list[str]:
    """One line per failure reason: ``count reason (first ids, ...): what to do``, most frequent first."""
    if not len(missing):
        return []
    reasons = [reason_of(s, e) for s, e in zip(missing["status"], missing["error"])]
    frame = missing.assign(_reason=reasons)
    out = []
    for reason, group in sorted(frame.groupby("_reason", sort=False), key=lambda kv: -len(kv[1])):
        ids = list(dict.fromkeys(group["tile_id"].astype(str)))
        shown = ", ".join(ids[:n_ids]) + (", ..." if len(ids) > n_ids else "")
        out.append(f"{len(group)} captions {reason} (tiles {shown}): {advice_for(reason)}")
    return out


def caption_line(res: "GenerationResult") -> str:
    """``N captions: a ok (b new, c cached, d recovered), e without an answer, in W s``."""
    caps = res.captions
    st = caps["status"].value_counts().to_dict() if len(caps) else {}
    ok = sum(st.get(s, 0) for s in OK_STATUSES)
    return (f"{len(caps)} captions: {ok} answered ({st.get('ok', 0)} new, {st.get('cached', 0)} cached, "
            f"{st.get('recovered', 0)} recovered), {len(caps) - ok} without an answer, in {res.wall_s:.1f} s")


def request_line(res: "GenerationResult") -> str:
    """Requests: by final status, and what was sent (attempts, retries, 429s, malformed answers)."""
    r = res.requests
    by = ", ".join(f"{v} {k}" for k, v in sorted(res.counts.items()))
    line = f"{sum(res.counts.values())} requests ({by})"
    if res.backend == "openai":
        line += (f"; {r.get('sent', 0)} sent in {r.get('attempts', 0)} attempts ({r.get('retries', 0)} retries, "
                 f"{r.get('answered_429', 0)} answered 429, {r.get('malformed', 0)} malformed answers)")
    return line


def money_line(res: "GenerationResult") -> str:
    """This invocation's spending and the run's total against its budget."""
    budget = "no budget" if res.budget_usd is None else f"budget {res.budget_usd:.4f} USD"
    return (f"spent {res.spent_usd:.4f} USD (run {_shown_run(res.run_name)!r}: {res.run_total_usd:.4f} USD over all "
            f"invocations, {budget})")


def _shown_run(name: str) -> str:
    """A run name as printed: its workdir part (``<workdir>|<model>|<paradigms>``) relative to the
    current folder, so a notebook's output names no folder of this machine."""
    import os

    head, sep, tail = (name or "").partition("|")
    if sep and os.path.isabs(head):
        try:
            head = os.path.relpath(head)
        except ValueError:  # another drive (Windows): keep it as it is
            pass
    return head + sep + tail


def in_flight_line(res: "GenerationResult") -> str:
    """The bound on paying twice after a kill, as it holds for this run."""
    if res.recover_in_flight:
        return ("in-flight recovery on: a killed run's in-flight requests are collected from the provider's stored "
                "completions (the provider keeps prompts and answers)")
    return (f"a kill re-sends at most {res.concurrency} requests (the concurrency) that may be billed twice; "
            "--recover-in-flight avoids that by storing completions on the provider")


def eligibility_line(workdir: str | Path, n_stats: int) -> str:
    """``N tiles: E eligible, X excluded (...)`` from ``tiles.parquet`` when the tiling stage provides
    it (:func:`cen.tiling.eligibility_summary`), else how many tiles ``stats.parquet`` holds."""
    tiles_path = Path(workdir) / "tiles.parquet"
    try:
        from cen.tiling import eligibility_summary  # type: ignore[attr-defined]
    except ImportError:
        eligibility_summary = None
    if eligibility_summary is not None and tiles_path.exists():
        try:
            return str(eligibility_summary(pd.read_parquet(tiles_path)))
        except (OSError, ValueError, KeyError):
            pass
    return f"{n_stats} tiles in stats.parquet (the eligible tiles)"


def ledger_table(cache_path: str | Path, run_name: str | None = None) -> pd.DataFrame:
    """The spending recorded in a cache, one row per run x model (invocations summed), with
    ``invocations``; all runs, or one with ``run_name``."""
    from cen.generate.cache import SPEND_COLUMNS, GenerationCache

    if not Path(cache_path).exists():
        raise FileNotFoundError(f"{cache_path}: no generation cache (nothing was generated with this cache)")
    with GenerationCache(cache_path) as cache:
        rows = pd.DataFrame(cache.spend_rows(run_name), columns=list(SPEND_COLUMNS))
    cols = ["run_name", "model", "invocations", "calls", "billed_unusable", "input_tokens", "cached_tokens",
            "output_tokens", "cost_usd"]
    if not len(rows):
        return pd.DataFrame(columns=cols)
    out = rows.groupby(["run_name", "model"], sort=False).agg(
        invocations=("invocation", "nunique"), calls=("calls", "sum"), billed_unusable=("billed_unusable", "sum"),
        input_tokens=("input_tokens", "sum"), cached_tokens=("cached_tokens", "sum"),
        output_tokens=("output_tokens", "sum"), cost_usd=("cost_usd", "sum")).reset_index()
    return out[cols]
