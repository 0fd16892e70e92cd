"""Running a list of prompt requests through a backend into a ``captions.parquet`` table.

:func:`generate` takes :class:`cen.prompting.PromptRequest` objects and a :class:`GenerateConfig`:

* ``backend="template"``: the offline captioner (:mod:`cen.generate.template`) from each
  request's region counts; no key, no network, no cost;
* ``backend="openai"``: the real ``openai`` client. ``concurrency`` requests in flight (asyncio
  workers), RPM/TPM limits, retries with back-off and jitter honouring ``Retry-After``, the
  content-addressed cache (:mod:`cen.generate.cache`), the cost ledger with a budget
  (:mod:`cen.generate.ledger`), and ``mode="batch"`` for the Batch API (:mod:`cen.generate.batch`).

Resume after a kill: ``done`` answers come from the cache (status ``cached``); requests the killed
run left ``in_flight`` are looked up among the server's stored completions (status
``recovered``) after ``recover_grace`` seconds from their sending, and re-sent only when the
server has no answer for them (or cannot list stored completions: then a warning says they may
be billed twice).

Final status per request / caption: ``ok`` (answered in this run), ``cached``, ``recovered``,
``failed`` (with ``error``: the last error after the last retry), ``budget_stopped`` (not sent:
its worst case would pass the budget), ``unsplittable`` (a multi-tile answer that could not be
split into one caption per tile; the raw answer is kept in ``raw_text``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from cen.generate.cache import GenerationCache, cache_key
from cen.generate.ledger import BudgetExceeded, CostLedger
from cen.generate.split import split_answer
from cen.generate.template import TEMPLATE_CAPTIONER_VERSION, caption_from_counts
from cen.prompting import Price, PromptRequest, count_message_tokens
from cen.tables import read_table, write_parquet

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

GENERATE_VERSION = "1"
"""Version of the captions table layout written by this module."""

CAPTION_COLUMNS = (
    "tile_id", "paradigm", "text", "status", "error", "model_requested", "model_returned", "template_version",
    "messages_hash", "cache_key", "request_id", "request_tiles", "position", "input_tokens", "output_tokens",
    "cost_usd", "paid_this_run", "attempts", "latency_s", "backend", "via", "raw_text", "generated_at",
    "generate_version",
)
"""Columns of ``captions.parquet`` (one row per tile x paradigm); tokens and cost of a multi-tile
request are shared equally by its tiles."""

OK_STATUSES = ("ok", "cached", "recovered")
"""Final statuses of a caption that has an answer (see the module docstring)."""


@dataclass
class GenerateConfig:
    """Settings of a generation run (no secrets: the key is read from ``api_key_env``)."""

    backend: str = "template"
    model: str | None = None
    """Model id sent to the server; None = each request's template default."""
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    mode: str = "direct"
    """``direct`` (chat completions) or ``batch`` (Batch API, half price, asynchronous)."""
    concurrency: int = 32
    rpm: float | None = None
    tpm: float | None = None
    budget_usd: float | None = None
    max_retries: int = 6
    timeout: float = 60.0
    backoff_base: float = 0.5
    backoff_cap: float = 60.0
    temperature: float | None = None
    prices: Mapping[str, Price] | None = None
    store: bool = True
    """Send ``store=True`` and ``metadata.cen_cache_key`` so a killed run's in-flight calls can be recovered."""
    recover_grace: float = 5.0
    batch_poll: float = 5.0
    batch_timeout: float = 26 * 3600.0
    batch_max_requests: int = 50_000
    seed: int = 0
    """Wording seed of the template backend."""
    progress: bool = True

    def __post_init__(self) -> None:
        if self.backend not in ("template", "openai"):
            raise ValueError(f"unknown backend {self.backend!r}; expected 'template' or 'openai'")
        if self.mode not in ("direct", "batch"):
            raise ValueError(f"unknown mode {self.mode!r}; expected 'direct' or 'batch'")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.budget_usd is not None and self.budget_usd < 0:
            raise ValueError(f"budget_usd must be >= 0, got {self.budget_usd}")


@dataclass
class Outcome:
    """What happened to one request."""

    request: PromptRequest
    key: str
    model: str
    status: str = "pending"
    text: str | None = None
    captions: list[str | None] = field(default_factory=list)
    model_returned: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    paid_this_run: bool = False
    attempts: int = 0
    error: str | None = None
    latency_s: float = math.nan
    via: str | None = None


@dataclass
class GenerationResult:
    """Captions table, the run's ledger and counters."""

    captions: pd.DataFrame
    ledger: pd.DataFrame
    counts: dict[str, int]
    run_id: str
    spent_usd: float
    wall_s: float
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: captions, wall time, requests by final status and the money spent."""
        return (f"{len(self.captions)} captions in {self.wall_s:.2f} s; requests by status {self.counts}; "
                f"spent {self.spent_usd:.4f} USD")

    def status_table(self) -> pd.DataFrame:
        """Captions per paradigm and final status (columns ``paradigm``, ``status``, ``captions``)."""
        return status_table(self.captions)


def request_params(req: PromptRequest, cfg: GenerateConfig) -> dict[str, Any]:
    """Generation parameters that enter the cache key and the API call."""
    params: dict[str, Any] = {"max_tokens": int(req.max_tokens)}
    if cfg.temperature is not None:
        params["temperature"] = float(cfg.temperature)
    return params


def _model_of(req: PromptRequest, cfg: GenerateConfig) -> str:
    if cfg.backend == "template":
        return "template"
    return cfg.model or req.model


def _finish_split(o: Outcome) -> None:
    """Fill ``captions`` from ``text`` (flag multi-tile answers that cannot be split)."""
    n = len(o.request.tile_ids)
    parts = split_answer(o.text or "", n)
    if parts is None:
        o.captions = [None] * n
        if o.status in ("ok", "cached", "recovered"):
            o.error = f"answer could not be split into {n} captions"
            o.status = "unsplittable"
    else:
        o.captions = list(parts)


# ----------------------------------------------------------------------------------------------
# template backend


_PARADIGM_SEED_OFFSET = {"gpt35": 0, "gpt4v": 1_000_003}


def _run_template(outcomes: list[Outcome], cfg: GenerateConfig) -> None:
    from tqdm.auto import tqdm

    for o in tqdm(outcomes, desc="template captions", unit="request", disable=not cfg.progress):
        counts = o.request.region_counts
        if counts is None or len(counts) != len(o.request.tile_ids):
            o.status, o.error = "failed", "template backend needs the tiles' region counts (count columns of stats.parquet)"
            o.captions = [None] * len(o.request.tile_ids)
            continue
        t0 = time.perf_counter()
        seed = cfg.seed + _PARADIGM_SEED_OFFSET.get(o.request.paradigm, 0)  # different wording per paradigm
        o.captions = [caption_from_counts(np.asarray(c), seed=seed) for c in counts]
        o.text = "\n\n".join(o.captions)
        o.status, o.model_returned, o.via, o.attempts = "ok", "template", "template", 1
        o.latency_s = time.perf_counter() - t0


# ----------------------------------------------------------------------------------------------
# openai backend, direct mode


async def _recover(client: Any, cache: GenerationCache, todo: list[Outcome], ledger: CostLedger,
                   cfg: GenerateConfig, run_id: str, notes: list[str]) -> None:
    """Collect answers of calls a killed run left in flight (see module docstring)."""
    from cen.generate.openai_backend import find_stored

    by_key = {o.key: o for o in todo}
    stale = [r for r in cache.in_flight() if r.cache_key in by_key and r.batch_id is None]
    if not stale:
        return
    if not cfg.store:
        notes.append(f"{len(stale)} requests were in flight when a previous run stopped; store=False, so they are "
                     "re-sent and may be billed twice")
        return
    wait = max((r.sent_at or 0) + cfg.recover_grace - time.time() for r in stale)
    if wait > 0:
        await asyncio.sleep(wait)
    found = 0
    for r in stale:
        try:
            ans = await find_stored(client, r.cache_key)
        except Exception as exc:  # noqa: BLE001 - a server without the listing endpoint
            notes.append(f"server cannot list stored completions ({type(exc).__name__}); {len(stale)} in-flight "
                         "requests of a previous run are re-sent and may be billed twice")
            return
        if ans is None:
            continue
        o = by_key[r.cache_key]
        cost = ledger.settle(0.0, o.model, ans.input_tokens, ans.output_tokens)
        cache.complete(o.key, model_requested=o.model, model_returned=ans.model_returned, text=ans.text,
                       input_tokens=ans.input_tokens, output_tokens=ans.output_tokens, cost_usd=cost,
                       via="recovered", request_id=o.request.request_id, attempts=r.attempts)
        cache.add_to_ledger(run_id, o.model, ans.input_tokens, ans.output_tokens, cost)
        o.status, o.text, o.model_returned, o.via = "recovered", ans.text, ans.model_returned, "recovered"
        o.input_tokens, o.output_tokens, o.cost_usd, o.attempts = ans.input_tokens, ans.output_tokens, cost, r.attempts
        found += 1
    resent = len(stale) - found
    notes.append(f"{len(stale)} requests were in flight when a previous run stopped: {found} answers recovered "
                 f"from the server, {resent} re-sent")


async def _run_direct(client: Any, cache: GenerationCache, todo: list[Outcome], ledger: CostLedger,
                      cfg: GenerateConfig, run_id: str, bar: Any) -> None:
    from cen.generate.openai_backend import CallFailed, call_chat
    from cen.generate.ratelimit import RateLimiter

    limiter = RateLimiter(cfg.rpm, cfg.tpm)
    queue: asyncio.Queue[Outcome] = asyncio.Queue()
    for o in todo:
        queue.put_nowait(o)
    rng = random.Random()

    async def one(o: Outcome) -> None:
        req = o.request
        n_in, _ = count_message_tokens(req.messages, o.model, cfg.prices) if (ledger.budget_usd is not None or cfg.tpm) else (0, True)
        try:
            booked = ledger.reserve(o.model, n_in, req.max_tokens)
        except BudgetExceeded as exc:
            o.status, o.error = "budget_stopped", str(exc)
            o.captions = [None] * len(req.tile_ids)
            return
        await limiter.acquire(n_in + req.max_tokens)
        t0 = time.perf_counter()

        def mark(attempt: int) -> None:
            cache.mark_in_flight(o.key, o.model, req.request_id, attempt)

        try:
            ans = await call_chat(
                client, model=o.model, messages=req.messages, params=request_params(req, cfg),
                max_retries=cfg.max_retries, backoff_base=cfg.backoff_base, backoff_cap=cfg.backoff_cap,
                metadata={"cen_cache_key": o.key}, store=cfg.store, before_attempt=mark, rng=rng,
            )
        except CallFailed as exc:
            ledger.cancel(booked)
            cache.fail(o.key, o.model, str(exc), exc.attempts, req.request_id)
            o.status, o.error, o.attempts = "failed", str(exc), exc.attempts
            o.captions = [None] * len(req.tile_ids)
            o.latency_s = time.perf_counter() - t0
            return
        cost = ledger.settle(booked, o.model, ans.input_tokens, ans.output_tokens)
        cache.complete(o.key, model_requested=o.model, model_returned=ans.model_returned, text=ans.text,
                       input_tokens=ans.input_tokens, output_tokens=ans.output_tokens, cost_usd=cost,
                       via="direct", request_id=req.request_id, attempts=ans.attempts)
        cache.add_to_ledger(run_id, o.model, ans.input_tokens, ans.output_tokens, cost)
        o.status, o.text, o.model_returned, o.via, o.paid_this_run = "ok", ans.text, ans.model_returned, "direct", True
        o.input_tokens, o.output_tokens, o.cost_usd, o.attempts = ans.input_tokens, ans.output_tokens, cost, ans.attempts
        o.latency_s = time.perf_counter() - t0

    async def worker() -> None:
        while True:
            try:
                o = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await one(o)
            if o.status not in ("budget_stopped", "failed"):
                _finish_split(o)
            bar.update(1)

    await asyncio.gather(*(worker() for _ in range(min(cfg.concurrency, max(1, len(todo))))))


async def _run_openai(outcomes: list[Outcome], cache: GenerationCache, ledger: CostLedger, cfg: GenerateConfig,
                      run_id: str, notes: list[str]) -> None:
    from tqdm.auto import tqdm

    from cen.generate.openai_backend import make_client

    # answers already in the cache cost nothing
    known = cache.get_many(o.key for o in outcomes)
    todo: list[Outcome] = []
    for o in outcomes:
        rec = known.get(o.key)
        if rec is not None and rec.status == "done":
            o.status, o.text, o.model_returned, o.via = "cached", rec.text, rec.model_returned, rec.via
            o.input_tokens, o.output_tokens = rec.input_tokens or 0, rec.output_tokens or 0
            o.cost_usd, o.attempts = rec.cost_usd or 0.0, rec.attempts
            _finish_split(o)
        else:
            todo.append(o)
    # the same prompt twice in one run is sent once
    first: dict[str, Outcome] = {}
    dupes: list[Outcome] = []
    for o in todo:
        if o.key in first:
            dupes.append(o)
        else:
            first[o.key] = o
    todo = list(first.values())
    if todo:
        client = make_client(cfg.base_url, api_key_env=cfg.api_key_env, timeout=cfg.timeout,
                             max_connections=max(cfg.concurrency * 2, 16))
        try:
            if cfg.mode == "batch":
                from cen.generate.batch import run_batch

                await run_batch(client, cache, todo, ledger, cfg, run_id, notes)
                for o in todo:
                    if o.status in ("ok", "recovered"):
                        _finish_split(o)
                    elif not o.captions:
                        o.captions = [None] * len(o.request.tile_ids)
            else:
                await _recover(client, cache, todo, ledger, cfg, run_id, notes)
                for o in todo:
                    if o.status == "recovered":
                        _finish_split(o)
                rest = [o for o in todo if o.status == "pending"]
                with tqdm(total=len(rest), desc=f"captions ({cfg.model or 'model'})", unit="request",
                          disable=not cfg.progress) as bar:
                    await _run_direct(client, cache, rest, ledger, cfg, run_id, bar)
        finally:
            await client.close()
    for o in dupes:
        src = first[o.key]
        for attr in ("status", "text", "captions", "model_returned", "input_tokens", "output_tokens", "cost_usd",
                     "attempts", "error", "via"):
            setattr(o, attr, getattr(src, attr))
        if o.status == "ok":
            o.status = "cached"


# ----------------------------------------------------------------------------------------------
# public API


def _run_coroutine(coro: Any) -> Any:
    """Run a coroutine from sync code, also inside Jupyter's running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def generate(requests: Sequence[PromptRequest], config: GenerateConfig | None = None, *,
             cache_path: str | Path | None = None) -> GenerationResult:
    """Answer every request and return the captions table (one row per tile of each request).

    ``cache_path``: the SQLite cache (default ``<cen cache dir>/generation.sqlite``); unused by
    the template backend.
    """
    cfg = config or GenerateConfig()
    t0 = time.perf_counter()
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    outcomes = []
    for req in requests:
        model = _model_of(req, cfg)
        key = cache_key(model, request_params(req, cfg), req.messages_hash, req.image_hashes)
        outcomes.append(Outcome(request=req, key=key, model=model))
    ledger = CostLedger(cfg.budget_usd, cfg.prices, batch=cfg.mode == "batch")
    notes: list[str] = []
    if cfg.backend == "template":
        _run_template(outcomes, cfg)
    else:
        if cache_path is None:
            from cen.paths import cache_dir

            cache_path = cache_dir() / "generation.sqlite"
        with GenerationCache(cache_path) as cache:
            _run_coroutine(_run_openai(outcomes, cache, ledger, cfg, run_id, notes))
    if ledger.unpriced_models:
        notes.append(f"no price for {', '.join(sorted(ledger.unpriced_models))}: cost counted as 0 "
                     "(pass prices={model: Price(...)})")
    for n in notes:
        log.warning(n)
    frame = captions_frame(outcomes, cfg)
    counts = frame.drop_duplicates("request_id")["status"].value_counts().to_dict() if len(frame) else {}
    return GenerationResult(captions=frame, ledger=ledger.frame(), counts={str(k): int(v) for k, v in counts.items()},
                            run_id=run_id, spent_usd=ledger.spent_usd, wall_s=time.perf_counter() - t0, notes=notes)


def captions_frame(outcomes: Sequence[Outcome], cfg: GenerateConfig) -> pd.DataFrame:
    """The captions table (:data:`CAPTION_COLUMNS`) of a run's outcomes."""
    rows = []
    now = pd.Timestamp.now(tz="UTC")
    for o in outcomes:
        req = o.request
        n = len(req.tile_ids)
        caps = o.captions or [None] * n
        for k, tile in enumerate(req.tile_ids):
            rows.append({
                "tile_id": tile, "paradigm": req.paradigm, "text": caps[k], "status": o.status, "error": o.error,
                "model_requested": o.model, "model_returned": o.model_returned,
                "template_version": TEMPLATE_CAPTIONER_VERSION if cfg.backend == "template" else req.template_version,
                "messages_hash": req.messages_hash, "cache_key": o.key, "request_id": req.request_id,
                "request_tiles": n, "position": k, "input_tokens": o.input_tokens / n,
                "output_tokens": o.output_tokens / n, "cost_usd": o.cost_usd / n, "paid_this_run": o.paid_this_run,
                "attempts": o.attempts, "latency_s": o.latency_s, "backend": cfg.backend, "via": o.via,
                "raw_text": o.text if o.status == "unsplittable" else None, "generated_at": now,
                "generate_version": GENERATE_VERSION,
            })
    return pd.DataFrame(rows, columns=list(CAPTION_COLUMNS))


def write_captions(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a captions table atomically (temporary name, then rename)."""
    missing = [c for c in ("tile_id", "paradigm", "text", "status") if c not in frame.columns]
    if missing:
        raise KeyError(f"captions table lacks column {missing[0]!r}")
    return write_parquet(frame, path)


def read_captions(path: str | Path) -> pd.DataFrame:
    """Read ``captions.parquet``, checking the columns later stages rely on."""
    return read_table(path, CAPTION_COLUMNS, what="captions table", made_by="notebook 03 / `cen generate`")


def build_workdir_requests(workdir: str | Path, paradigms: Sequence[str] = ("gpt35",), *, limit: int | None = None,
                           templates: Mapping[str, str] | None = None, model: str | None = None,
                           rgb: bool = False, compat: bool | None = None) -> list[PromptRequest]:
    """Prompt requests for the tiles of a run's ``stats.parquet`` (first ``limit`` tiles).

    ``gpt4v`` also reads the label maps (and with ``rgb=True`` the Sentinel-2 pictures) through
    ``tiles.parquet``.
    """
    from cen.prompting import build_requests, load_label_maps, load_rgb
    from cen.stats import read_stats

    workdir = Path(workdir)
    stats = read_stats(workdir / "stats.parquet")
    if limit is not None:
        stats = stats.head(int(limit))
    requests: list[PromptRequest] = []
    for paradigm in paradigms:
        template = (templates or {}).get(paradigm)
        if paradigm == "gpt4v":
            tiles_path = workdir / "tiles.parquet"
            if not tiles_path.exists():
                raise FileNotFoundError(f"{tiles_path}: tiles table not found (gpt4v prompts need the label maps)")
            tiles = pd.read_parquet(tiles_path, columns=None)
            ids = stats["tile_id"].astype(str).tolist()
            labels = load_label_maps(tiles, ids, base_dir=workdir)
            pictures = load_rgb(tiles, ids, base_dir=workdir) if rgb else None
            requests += build_requests(stats, "gpt4v", template=template, model=model, label_maps=labels,
                                       rgb=pictures, compat=compat, source=str(workdir / "stats.parquet"))
        else:
            requests += build_requests(stats, paradigm, template=template, model=model, compat=compat,
                                       source=str(workdir / "stats.parquet"))
    return requests


def generate_for_workdir(workdir: str | Path, config: GenerateConfig | None = None, *,
                         paradigms: Sequence[str] = ("gpt35",), limit: int | None = None,
                         templates: Mapping[str, str] | None = None, rgb: bool = False,
                         cache_path: str | Path | None = None, out_name: str = "captions.parquet") -> GenerationResult:
    """``stats.parquet`` (+ ``tiles.parquet``) in ``workdir`` -> ``captions.parquet`` there (atomically)."""
    cfg = config or GenerateConfig()
    requests = build_workdir_requests(workdir, paradigms, limit=limit, templates=templates, model=cfg.model, rgb=rgb)
    result = generate(requests, cfg, cache_path=cache_path)
    write_captions(result.captions, Path(workdir) / out_name)
    return result


# ----------------------------------------------------------------------------------------------
# summaries and figures of a captions table (notebook 03)


def status_table(captions: pd.DataFrame) -> pd.DataFrame:
    """Captions per paradigm and final status (columns ``paradigm``, ``status``, ``captions``)."""
    return captions.groupby(["paradigm", "status"]).size().rename("captions").reset_index()


def caption_summary(captions: pd.DataFrame) -> dict[str, Any]:
    """Key numbers of a captions table: ``n_tiles``, ``n_captions``, ``n_ok`` (status in
    :data:`OK_STATUSES`), ``n_failed``, ``paradigms`` (sorted) and ``mean_words`` (of the answered
    captions; 0.0 when there are none)."""
    ok = captions["status"].isin(OK_STATUSES)
    words = captions.loc[ok, "text"].str.split().str.len()
    return {
        "n_tiles": int(captions["tile_id"].nunique()),
        "n_captions": int(len(captions)),
        "n_ok": int(ok.sum()),
        "n_failed": int((captions["status"] == "failed").sum()),
        "paradigms": sorted(captions["paradigm"].unique().tolist()),
        "mean_words": float(words.mean()) if len(words) else 0.0,
    }


def plot_captions(captions: pd.DataFrame, labels: Mapping[str, np.ndarray],
                  pictures: Mapping[str, np.ndarray | None] | None = None, width: int = 110) -> Figure | None:
    """One row per tile of ``labels`` (in caption order): its label map in ChatEarthNet colours,
    its Sentinel-2 picture when ``pictures`` has one, and every paradigm's caption (``[paradigm]
    text``, wrapped at ``width`` characters). ``labels``: ``{tile_id: (H, W) indices}``
    (:func:`cen.prompting.load_label_maps`); ``pictures``: :func:`cen.prompting.load_rgb`.
    Returns ``None`` when no captioned tile has a label map."""
    import textwrap

    import matplotlib.pyplot as plt

    from cen.landcover import indices_to_colour

    shown = captions[captions["tile_id"].astype(str).isin(labels)].drop_duplicates(["tile_id", "paradigm"])
    groups = list(shown.groupby("tile_id", sort=False))
    if not groups:
        return None
    pictures = {t: p for t, p in (pictures or {}).items() if p is not None}
    with_pic = any(str(t) in pictures for t, _ in groups)
    ratios = [1, 1, 2.4] if with_pic else [1, 2.4]
    fig, axes = plt.subplots(len(groups), len(ratios), figsize=(11 + 3.2 * with_pic, 3.6 * len(groups)),
                             gridspec_kw={"width_ratios": ratios}, squeeze=False)
    for row, (tile_id, group) in zip(axes, groups):
        ax_img, ax_txt = row[0], row[-1]
        ax_img.imshow(indices_to_colour(labels[str(tile_id)]))
        ax_img.set_title(str(tile_id), fontsize=7)
        ax_img.axis("off")
        if with_pic:
            if str(tile_id) in pictures:
                row[1].imshow(pictures[str(tile_id)])
                row[1].set_title("Sentinel-2 (true colour)", fontsize=7)
            row[1].axis("off")
        text = "\n\n".join(f"[{p}] " + textwrap.fill(str(t), width) for p, t in zip(group["paradigm"], group["text"]))
        ax_txt.text(0, 1, text, va="top", fontsize=7, family="serif", wrap=True)
        ax_txt.axis("off")
    return fig
