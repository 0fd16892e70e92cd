"""Running a list of prompt requests through a backend into a ``captions.parquet`` table.

:func:`generate` takes :class:`cen.prompting.PromptRequest` objects and a :class:`GenerateConfig`:

* ``backend="template"``: the offline captioner (:mod:`cen.generate.template`) from each
  request's region counts; no key, no network, no cost;
* ``backend="openai"``: the real ``openai`` client (:mod:`cen.generate.direct`: ``concurrency``
  workers, pacing under the provider's rate limits, retries, a circuit breaker), the
  content-addressed cache (:mod:`cen.generate.cache`), the run's cost ledger with a budget that
  holds across invocations (:mod:`cen.generate.ledger`), and ``mode="batch"`` for the Batch API
  (:mod:`cen.generate.batch`).

Resume after a kill: ``done`` answers come from the cache (status ``cached``); requests the
killed run left ``in_flight`` (at most ``concurrency``) are sent again, or with
``recover_in_flight`` first looked up among the provider's stored completions (status
``recovered``; see :mod:`cen.generate.direct`).

Final status per request / caption: ``ok`` (answered in this invocation), ``cached``,
``recovered``, ``failed`` (``error``: the last error after the last retry), ``budget_stopped``
(not sent: its worst case would pass the run's budget), ``stopped`` (not sent: the circuit
breaker tripped), ``unsplittable`` (a multi-tile answer that could not be split into one caption
per tile; the raw answer is kept in ``raw_text``), ``not_sent`` (the run was interrupted first).

:func:`generate_for_workdir` merges the result into the workdir's ``captions.parquet`` by
(``tile_id``, ``paradigm``) (:func:`merge_captions`): a run adds or improves rows and never
replaces an answered caption by a failure.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from cen.generate import DEFAULT_PARADIGMS
from cen.generate.cache import GenerationCache, cache_key
from cen.generate.ledger import CostLedger, check_priced
from cen.generate.split import split_answer
from cen.generate.template import TEMPLATE_CAPTIONER_VERSION, caption_from_counts
from cen.generate.views import OK_STATUSES, caption_summary, plot_captions, status_table
from cen.prompting import Price, PromptRequest
from cen.tables import read_table, write_parquet

GENERATE_VERSION = "2"
"""Version of the captions table layout written by this module (2: ``cached_tokens``)."""

CAPTION_COLUMNS = (
    "tile_id", "paradigm", "text", "status", "error", "model_requested", "model_returned", "template_version",
    "messages_hash", "cache_key", "request_id", "request_tiles", "position", "input_tokens", "cached_tokens",
    "output_tokens", "cost_usd", "paid_this_run", "attempts", "latency_s", "backend", "via", "raw_text",
    "generated_at", "generate_version",
)
"""Columns of ``captions.parquet`` (one row per tile x paradigm); tokens and cost of a multi-tile
request are shared equally by its tiles, and include billed answers that were malformed."""

READ_COLUMNS = ("tile_id", "paradigm", "text", "status")
"""Columns :func:`read_captions` requires (older tables lack some of :data:`CAPTION_COLUMNS`)."""

__all__ = [
    "CAPTION_COLUMNS", "GENERATE_VERSION", "OK_STATUSES", "GenerateConfig", "GenerationInterrupted",
    "GenerationResult", "build_workdir_requests", "caption_summary", "captions_frame", "default_run_name",
    "generate", "generate_for_workdir", "merge_captions", "plot_captions", "read_captions", "status_table",
    "write_captions",
]


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
    """Requests-per-minute cap of our own (the provider's limits are read from its headers anyway)."""
    tpm: float | None = None
    budget_usd: float | None = None
    """Cap on the total spent by the run (``run_name``) over all its invocations."""
    run_name: str | None = None
    """Names the run whose spending the budget caps across invocations. None: :func:`generate` caps
    this invocation alone; the CLI, notebook 03 and :func:`generate_for_workdir` name the run by
    workdir + model + paradigms (:func:`default_run_name`)."""
    max_retries: int = 6
    timeout: float = 60.0
    """Seconds per request attempt."""
    breaker_after: int = 5
    """Consecutive identical non-retryable failures (401, 403, 404, connection refused, DNS) that stop the run."""
    backoff_base: float = 0.5
    backoff_cap: float = 60.0
    temperature: float | None = None
    prices: Mapping[str, Price] | None = None
    recover_in_flight: bool = False
    """Send ``store=True`` + ``metadata.cen_cache_key``, so a killed run's in-flight calls can be collected
    from the provider instead of paid again. The provider then keeps every prompt and answer."""
    store: bool | None = None
    """Old name of ``recover_in_flight`` (used when given)."""
    recover_grace: float | None = None
    """Recovery wait: seconds after a killed run sent a request before its stored answer is looked
    up (None = ``timeout``, the longest a request can have taken)."""
    adapt_rate: bool = True
    """Pace by the provider's ``x-ratelimit-*`` headers (False: only ``rpm`` / ``tpm``)."""
    batch_poll: float = 5.0
    batch_timeout: float = 26 * 3600.0
    batch_max_requests: int = 50_000
    seed: int = 0
    """Wording seed of the template backend."""
    attributes: str | None = None
    """Attribute variant of an ablation run (``cen.generate.template.ATTRIBUTE_VARIANTS``): the template
    backend writes that variant and the captions table gets an ``attributes`` column; None: a normal run."""
    progress: bool = True

    def __post_init__(self) -> None:
        if self.store is not None:
            self.recover_in_flight = bool(self.store)
        if self.backend not in ("template", "openai"):
            raise ValueError(f"unknown backend {self.backend!r}; expected 'template' or 'openai'")
        if self.mode not in ("direct", "batch"):
            raise ValueError(f"unknown mode {self.mode!r}; expected 'direct' or 'batch'")
        for name, low in (("concurrency", 1), ("max_retries", 0), ("breaker_after", 1), ("batch_max_requests", 1)):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        for name in ("rpm", "tpm", "timeout"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if self.budget_usd is not None and not (math.isfinite(self.budget_usd) and self.budget_usd >= 0):
            raise ValueError(f"budget must be >= 0 USD, got {self.budget_usd!r}")
        if self.recover_grace is not None and not self.recover_grace >= 0:
            raise ValueError(f"recover wait must be >= 0 seconds, got {self.recover_grace!r}")


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
    cached_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    paid_this_run: bool = False
    attempts: int = 0
    error: str | None = None
    latency_s: float = math.nan
    via: str | None = None


@dataclass
class GenerationResult:
    """Captions table, the invocation's ledger, counters and the run's money."""

    captions: pd.DataFrame
    ledger: pd.DataFrame
    counts: dict[str, int]
    """Requests by final status."""
    run_id: str
    spent_usd: float
    """Spent by this invocation."""
    wall_s: float
    notes: list[str] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)
    """Request counters: ``sent``, ``attempts``, ``retries``, ``answered_429``, ``malformed``, ``answered``."""
    run_name: str = ""
    run_total_usd: float = 0.0
    """Spent by the run over all its invocations (this one included)."""
    budget_usd: float | None = None
    concurrency: int = 0
    recover_in_flight: bool = False
    backend: str = "template"
    merged: pd.DataFrame | None = None
    """The captions table written by :func:`generate_for_workdir` (earlier rows merged in)."""

    def summary(self) -> str:
        """One line: captions (rows) and requests reported separately, wall time and money."""
        from cen.generate.console import caption_line, money_line, request_line

        return caption_line(self) + "; " + request_line(self) + "; " + money_line(self)

    def status_table(self) -> pd.DataFrame:
        """Captions per paradigm and final status (columns ``paradigm``, ``status``, ``captions``)."""
        return status_table(self.captions)


class GenerationInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the message says how many captions were done; ``result`` holds them."""

    def __init__(self, message: str, result: GenerationResult) -> None:
        super().__init__(message)
        self.result = result


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
        if o.status in OK_STATUSES:
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
        o.captions = [caption_from_counts(np.asarray(c), seed=seed, attributes=cfg.attributes or "full") for c in counts]
        o.text = "\n\n".join(o.captions)
        o.status, o.model_returned, o.via, o.attempts = "ok", "template", "template", 1
        o.latency_s = time.perf_counter() - t0


# ----------------------------------------------------------------------------------------------
# openai backend


async def _run_openai(outcomes: list[Outcome], cfg: GenerateConfig, ctx: Any, notes: list[str]) -> None:
    from tqdm.auto import tqdm

    from cen.generate.direct import recover, run_direct
    from cen.generate.openai_backend import make_client

    cache = ctx.cache
    known = cache.get_many(o.key for o in outcomes)  # answers already in the cache cost nothing
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
    first: dict[str, Outcome] = {}  # the same prompt twice in one run is sent once
    dupes: list[Outcome] = []
    for o in todo:
        (dupes.append(o) if o.key in first else first.setdefault(o.key, o))
    todo = list(first.values())
    try:
        if todo:
            client = make_client(cfg.base_url, api_key_env=cfg.api_key_env, timeout=cfg.timeout,
                                 max_connections=max(cfg.concurrency * 2, 16))
            try:
                if cfg.mode == "batch":
                    from cen.generate.batch import run_batch

                    await run_batch(client, todo, cfg, ctx, notes)
                    for o in todo:
                        if o.status in ("ok", "recovered"):
                            _finish_split(o)
                        elif not o.captions:
                            o.captions = [None] * len(o.request.tile_ids)
                else:
                    await recover(client, todo, cfg, ctx, notes)
                    for o in todo:
                        if o.status == "recovered":
                            _finish_split(o)
                    rest = [o for o in todo if o.status == "pending"]
                    models = cfg.model or ", ".join(sorted({o.model for o in rest}))
                    with tqdm(total=len(rest), desc=f"captions ({models})", unit="request",
                              disable=not cfg.progress) as bar:
                        await run_direct(client, rest, cfg, ctx, bar,
                                         on_done=lambda o: _finish_split(o) if o.status == "ok" else None)
            finally:
                await client.close()
    finally:
        for o in dupes:
            src = first[o.key]
            for attr in ("status", "text", "captions", "model_returned", "error", "via"):
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


def check_unique(requests: Sequence[PromptRequest]) -> None:
    """Raise ``ValueError`` when a (tile, paradigm) appears in two requests (two captions for one tile)."""
    seen: dict[tuple[str, str], str] = {}
    for req in requests:
        for t in req.tile_ids:
            if (t, req.paradigm) in seen:
                raise ValueError(f"tile {t!r} appears twice for paradigm {req.paradigm} (requests "
                                 f"{seen[(t, req.paradigm)]} and {req.request_id}); tile ids must be unique")
            seen[(t, req.paradigm)] = req.request_id


def default_run_name(workdir: str | Path, model: str | None, paradigms: Sequence[str]) -> str:
    """The run a budget belongs to when no ``run_name`` is given: ``<workdir>|<model>|<paradigms>``."""
    return f"{Path(workdir).resolve()}|{model or 'default'}|{'+'.join(sorted(paradigms))}"


def generate(requests: Sequence[PromptRequest], config: GenerateConfig | None = None, *,
             cache_path: str | Path | None = None) -> GenerationResult:
    """Answer every request and return the captions table (one row per tile of each request).

    ``cache_path``: the SQLite cache and ledger (default ``<cen cache dir>/generation.sqlite``);
    unused by the template backend. Raises ``ValueError`` for a tile in two requests, or for a
    budget over a model without a price (:func:`cen.generate.ledger.check_priced`), and
    :class:`GenerationInterrupted` on Ctrl-C (every answer so far is in the cache).
    """
    from cen.generate.direct import RunContext

    cfg = config or GenerateConfig()
    check_unique(requests)
    t0 = time.perf_counter()
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    outcomes = []
    for req in requests:
        model = _model_of(req, cfg)
        key = cache_key(model, request_params(req, cfg), req.messages_hash, req.image_hashes)
        outcomes.append(Outcome(request=req, key=key, model=model))
    run_name = cfg.run_name or run_id  # no name: this invocation alone (e.g. one Dask shard with its share)
    notes: list[str] = []
    ledger = CostLedger(cfg.budget_usd, cfg.prices, batch=cfg.mode == "batch")
    counters: dict[str, int] = {}
    interrupted = False
    if cfg.backend == "template":
        _run_template(outcomes, cfg)
    else:
        unpriced = check_priced({o.model for o in outcomes}, cfg.prices, cfg.budget_usd)
        if unpriced:
            notes.append(f"no price for {', '.join(unpriced)}: its cost is counted as 0 (give --price-in / "
                         "--price-out, or prices={model: Price(...)})")
        if cache_path is None:
            from cen.paths import cache_dir

            cache_path = cache_dir() / "generation.sqlite"
        with GenerationCache(cache_path) as cache:
            ledger.prior_usd = cache.run_spent(run_name)
            ctx = RunContext(cache=cache, ledger=ledger, run_name=run_name, invocation=run_id)
            try:
                _run_coroutine(_run_openai(outcomes, cfg, ctx, notes))
            except (KeyboardInterrupt, asyncio.CancelledError):
                interrupted = True
            counters = dict(ctx.counts)
    for o in outcomes:
        if o.status == "pending":
            o.status, o.error = "not_sent", "interrupted before it was sent"
            o.captions = [None] * len(o.request.tile_ids)
    frame = captions_frame(outcomes, cfg)
    counts = frame.drop_duplicates("request_id")["status"].value_counts().to_dict() if len(frame) else {}
    result = GenerationResult(
        captions=frame, ledger=ledger.frame(), counts={str(k): int(v) for k, v in counts.items()}, run_id=run_id,
        spent_usd=ledger.spent_usd, wall_s=time.perf_counter() - t0, notes=notes, requests=counters,
        run_name=run_name, run_total_usd=ledger.run_total_usd, budget_usd=cfg.budget_usd,
        concurrency=cfg.concurrency, recover_in_flight=cfg.recover_in_flight, backend=cfg.backend)
    if interrupted:
        n_ok = int(frame["status"].isin(OK_STATUSES).sum())
        raise GenerationInterrupted(f"interrupted after {n_ok} captions", result)
    return result


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
                "cached_tokens": o.cached_tokens / n, "output_tokens": o.output_tokens / n,
                "cost_usd": o.cost_usd / n, "paid_this_run": o.paid_this_run,
                "attempts": o.attempts, "latency_s": o.latency_s, "backend": cfg.backend, "via": o.via,
                "raw_text": o.text if o.status == "unsplittable" else None, "generated_at": now,
                "generate_version": GENERATE_VERSION,
            })
    frame = pd.DataFrame(rows, columns=list(CAPTION_COLUMNS))
    if cfg.attributes is not None:  # a caption set of the attribute ablation (captions_<variant>.parquet)
        frame["attributes"] = cfg.attributes
    return frame


def merge_captions(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """``old`` updated by ``new`` per (``tile_id``, ``paradigm``): a new row replaces an old one
    unless the old one has an answer (:data:`OK_STATUSES`) and the new one has not; rows only in
    ``old`` are kept. A replacing row takes the old row's place; new keys follow in their order."""
    if old is None or not len(old):
        return new.reset_index(drop=True)
    old = old.reindex(columns=list(dict.fromkeys([*new.columns, *old.columns])))

    def keys(frame: pd.DataFrame) -> pd.Series:
        return frame["tile_id"].astype(str) + "|" + frame["paradigm"].astype(str)

    old_keys, new_keys = keys(old), keys(new)
    old_answered = set(old_keys[old["status"].isin(OK_STATUSES).to_numpy()])
    new_answered = new["status"].isin(OK_STATUSES).to_numpy()
    kept_new = new[~(new_keys.isin(old_answered).to_numpy() & ~new_answered)]
    replaced = old_keys.isin(set(keys(kept_new))).to_numpy()
    merged = pd.concat([old[~replaced], kept_new], ignore_index=True)
    order = {k: i for i, k in enumerate(dict.fromkeys([*old_keys, *new_keys]))}
    return merged.iloc[np.argsort(keys(merged).map(order).to_numpy(), kind="stable")].reset_index(drop=True)


def write_captions(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a captions table atomically (temporary name, then rename)."""
    missing = [c for c in READ_COLUMNS if c not in frame.columns]
    if missing:
        raise KeyError(f"captions table lacks column {missing[0]!r}")
    return write_parquet(frame, path)


def read_captions(path: str | Path) -> pd.DataFrame:
    """Read ``captions.parquet``, checking the columns later stages rely on."""
    return read_table(path, READ_COLUMNS, what="captions table", made_by="notebook 03 / `cen generate`")


def check_stats_rows(stats: pd.DataFrame, source: str) -> None:
    """One-line errors for rows prompts cannot be built from: a missing or duplicate ``tile_id``."""
    if "tile_id" not in stats.columns:
        raise KeyError(f"{source}: missing column 'tile_id'")
    ids = stats["tile_id"]
    if ids.isna().any():
        raise ValueError(f"{source}: row {int(np.flatnonzero(ids.isna().to_numpy())[0])} has no tile_id")
    dup = ids.astype(str)[ids.astype(str).duplicated()]
    if len(dup):
        raise ValueError(f"{source}: tile_id {dup.iloc[0]!r} appears {int((ids.astype(str) == dup.iloc[0]).sum())} "
                         f"times ({dup.nunique()} duplicated ids); tile ids must be unique")


def build_workdir_requests(workdir: str | Path, paradigms: Sequence[str] = ("gpt35",), *, limit: int | None = None,
                           templates: Mapping[str, str] | None = None, model: str | None = None,
                           rgb: bool = False, compat: bool | None = None,
                           attributes: str | None = None) -> list[PromptRequest]:
    """Prompt requests for the tiles of a run's ``stats.parquet`` (first ``limit`` tiles).

    ``gpt4v`` also reads the label maps (and with ``rgb=True`` the Sentinel-2 pictures) through
    ``tiles.parquet``; paths in it are resolved from ``workdir``. ``attributes``: gpt35 requests of
    an ablation variant (``cen.generate.template.attribute_contexts``, template
    ``cen-gpt35-attributes-v1``).
    """
    from cen.prompting import build_requests, load_label_maps, load_rgb
    from cen.stats import read_stats

    workdir = Path(workdir)
    source = str(workdir / "stats.parquet")
    if limit is not None and int(limit) < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    stats = read_stats(workdir / "stats.parquet")
    check_stats_rows(stats, source)
    if limit is not None:
        stats = stats.head(int(limit))
    if attributes is not None:
        from cen.generate.template import ATTRIBUTES_TEMPLATE, attribute_contexts

        stats = attribute_contexts(stats, attributes)
        templates = {"gpt35": ATTRIBUTES_TEMPLATE, **(templates or {})}
    requests: list[PromptRequest] = []
    for paradigm in dict.fromkeys(paradigms):
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
                                       rgb=pictures, compat=compat, source=source)
        else:
            requests += build_requests(stats, paradigm, template=template, model=model, compat=compat, source=source)
    return requests


def generate_attributes_for_workdir(workdir: str | Path, attributes: str, config: GenerateConfig | None = None, *,
                                    paradigms: Sequence[str] = DEFAULT_PARADIGMS, limit: int | None = None,
                                    cache_path: str | Path | None = None) -> GenerationResult:
    """One caption set of the attribute ablation: ``captions_<attributes>.parquet`` in ``workdir``,
    keyed like ``captions.parquet`` (``tile_id``, ``paradigm``) with the same columns plus
    ``attributes``. The template backend writes the variant from the counts; the openai backend
    asks with ``cen-gpt35-attributes-v1`` (gpt35 only: a GPT-4V label map shows every attribute)."""
    import dataclasses

    from cen.generate.template import ATTRIBUTE_VARIANTS

    if attributes not in ATTRIBUTE_VARIANTS:
        raise ValueError(f"unknown attributes variant {attributes!r}; expected one of {', '.join(ATTRIBUTE_VARIANTS)}")
    cfg = dataclasses.replace(config or GenerateConfig(), attributes=attributes)
    if cfg.backend != "template" and "gpt4v" in paradigms:
        raise ValueError("attribute variants for a language model are gpt35 only (the GPT-4V label map shows every "
                         "size and position); use --paradigm gpt35")
    requests = build_workdir_requests(workdir, paradigms, limit=limit, model=cfg.model, attributes=attributes)
    return generate_for_workdir(workdir, cfg, paradigms=paradigms, cache_path=cache_path,
                                out_name=f"captions_{attributes}.parquet", requests=requests)


def generate_for_workdir(workdir: str | Path, config: GenerateConfig | None = None, *,
                         paradigms: Sequence[str] = DEFAULT_PARADIGMS, limit: int | None = None,
                         templates: Mapping[str, str] | None = None, rgb: bool = False,
                         cache_path: str | Path | None = None, out_name: str = "captions.parquet",
                         requests: Sequence[PromptRequest] | None = None) -> GenerationResult:
    """``stats.parquet`` (+ ``tiles.parquet``) in ``workdir`` -> ``captions.parquet`` there, merged
    with what is already there (:func:`merge_captions`; written atomically, also when interrupted).

    The result's ``captions`` are this invocation's rows; ``result.merged`` the table written.
    """
    import dataclasses

    cfg = config or GenerateConfig()
    out = Path(workdir) / out_name
    old = read_captions(out) if out.exists() else None
    if requests is None:
        requests = build_workdir_requests(workdir, paradigms, limit=limit, templates=templates, model=cfg.model,
                                          rgb=rgb)
    if cfg.run_name is None:
        models = cfg.model or "+".join(sorted({r.model for r in requests}))
        cfg = dataclasses.replace(cfg, run_name=default_run_name(workdir, models, paradigms), store=None)
    try:
        result = generate(requests, cfg, cache_path=cache_path)
    except GenerationInterrupted as exc:
        exc.result.merged = merge_captions(old, exc.result.captions)
        write_captions(exc.result.merged, out)
        raise
    result.merged = merge_captions(old, result.captions)
    write_captions(result.merged, out)
    return result
