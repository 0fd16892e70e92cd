"""Direct mode: ``concurrency`` asyncio workers answering requests through chat completions.

Per request: book its worst case against the budget (:class:`~cen.generate.ledger.CostLedger`),
wait for the limiter (:mod:`cen.generate.ratelimit`: the provider's headers by default), mark it
``in_flight`` in the cache, send one attempt (:func:`~cen.generate.openai_backend.send_once`).
Retries only for what can succeed on retry -- 429, 5xx, timeouts, connection drops, malformed
HTTP-200 answers -- with back-off honouring ``Retry-After``; a malformed answer the provider
billed is charged (its usage when readable, else its worst case) before the retry, which books
again. The **circuit breaker** stops every request (status ``stopped``) once ``breaker_after``
requests in a row failed the same non-retryable way (401, 403, 404 -- e.g. an unknown model --,
connection refused, DNS), so a wrong ``--model`` or a closed port costs a handful of requests,
not ``max_retries`` per tile.

**In-flight requests of a killed run** (rows left ``in_flight`` in the cache; at most
``concurrency`` of them): without ``recover_in_flight`` they are sent again (the provider may bill
them twice). With it, requests carry ``store=True`` and ``metadata.cen_cache_key`` -- the provider
then keeps every prompt and answer (OpenAI: stored completions) -- and a resumed run
waits until ``recover_grace`` seconds (``--recover-wait``) after their sending, looks each up among the stored
completions (:func:`recover`) and collects the answers without a new call.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cen.generate.cache import GenerationCache
from cen.generate.ledger import BudgetExceeded, CostLedger
from cen.generate.openai_backend import AttemptError, send_once
from cen.generate.ratelimit import backoff_delay, make_limiter
from cen.prompting import count_message_tokens

if TYPE_CHECKING:
    from cen.generate.runner import GenerateConfig, Outcome


@dataclass
class Breaker:
    """Trips after ``threshold`` consecutive identical non-retryable failures."""

    threshold: int
    reason: str | None = None
    count: int = 0
    tripped: str | None = None

    def failure(self, status: str, message: str) -> None:
        if status == self.reason:
            self.count += 1
        else:
            self.reason, self.count = status, 1
        if self.count >= self.threshold and self.tripped is None:
            self.tripped = f"{status}: {self.threshold} requests in a row failed the same way ({message})"

    def success(self) -> None:
        self.reason, self.count = None, 0


@dataclass
class RunContext:
    """What the workers of one invocation share."""

    cache: GenerationCache
    ledger: CostLedger
    run_name: str
    invocation: str
    counts: dict[str, int] = field(default_factory=lambda: {
        "sent": 0, "attempts": 0, "answered_429": 0, "malformed": 0, "retries": 0, "answered": 0})
    limiter: Any = None
    breaker: Breaker | None = None

    def record_spend(self, model: str, usage: Any, cost: float, *, answered: bool) -> None:
        self.cache.add_spend(self.run_name, self.invocation, model, input_tokens=usage.input_tokens,
                             output_tokens=usage.output_tokens, cached_tokens=usage.cached_tokens, cost=cost,
                             answered=answered)


def _stop(o: "Outcome", status: str, error: str) -> None:
    o.status, o.error = status, error
    o.captions = [None] * len(o.request.tile_ids)


async def _answer_one(client: Any, o: "Outcome", cfg: "GenerateConfig", ctx: RunContext, rng: random.Random) -> None:
    from cen.generate.openai_backend import Usage

    from cen.generate.runner import request_params

    req = o.request
    ledger, cache, breaker, limiter = ctx.ledger, ctx.cache, ctx.breaker, ctx.limiter
    est_in = count_message_tokens(req.messages, o.model, cfg.prices)[0]
    params = request_params(req, cfg)
    t0 = time.perf_counter()
    attempt = 0
    while True:
        if breaker.tripped:
            return _stop(o, "stopped", f"stopped: {breaker.tripped}")
        try:
            booked = ledger.reserve(o.model, est_in, req.max_tokens)
        except BudgetExceeded as exc:
            return _stop(o, "budget_stopped", str(exc))
        ticket = await limiter.acquire(est_in, req.max_tokens)
        if breaker.tripped:
            ledger.cancel(booked)
            await limiter.release(ticket)
            return _stop(o, "stopped", f"stopped: {breaker.tripped}")
        attempt += 1
        ctx.counts["attempts"] += 1
        if attempt == 1:
            ctx.counts["sent"] += 1
        else:
            ctx.counts["retries"] += 1
        cache.mark_in_flight(o.key, o.model, req.request_id, attempt)
        try:
            ans = await send_once(client, model=o.model, messages=req.messages, params=params,
                                  store=cfg.recover_in_flight, metadata={"cen_cache_key": o.key}, timeout=cfg.timeout)
        except AttemptError as err:
            rejected = err.status == "http_429"
            ctx.counts["answered_429"] += rejected
            if err.breaker:  # before the place in flight is given to the next request
                breaker.failure(err.status, str(err))
            await limiter.release(ticket, err.headers, rejected=rejected, retry_after=err.retry_after)
            ledger.cancel(booked)
            if err.billed:  # a malformed 200: the provider billed it
                ctx.counts["malformed"] += 1
                usage = err.usage or Usage(est_in, req.max_tokens, 0, estimated=True)
                cost = ledger.charge(o.model, usage.input_tokens, usage.output_tokens, usage.cached_tokens,
                                     answered=False)
                ctx.record_spend(o.model, usage, cost, answered=False)
                o.input_tokens += usage.input_tokens
                o.output_tokens += usage.output_tokens
                o.cached_tokens += usage.cached_tokens
                o.cost_usd += cost
                o.paid_this_run = True
            if not err.retryable or attempt > cfg.max_retries:
                cache.fail(o.key, o.model, str(err), attempt, req.request_id)
                o.attempts, o.latency_s = attempt, time.perf_counter() - t0
                tried = f" after {attempt} attempts" if attempt > 1 else ""
                return _stop(o, "failed", f"{err}{tried}")
            await asyncio.sleep(backoff_delay(attempt, base=cfg.backoff_base, cap=cfg.backoff_cap,
                                              retry_after=err.retry_after, rng=rng))
            continue
        u = ans.usage
        await limiter.release(ticket, ans.headers, prompt_ratio=(u.input_tokens / est_in) if est_in and u.input_tokens else None)
        breaker.success()
        ctx.counts["answered"] += 1
        cost = ledger.settle(booked, o.model, u.input_tokens, u.output_tokens, u.cached_tokens)
        cache.complete(o.key, model_requested=o.model, model_returned=ans.model_returned, text=ans.text,
                       input_tokens=o.input_tokens + u.input_tokens, output_tokens=o.output_tokens + u.output_tokens,
                       cost_usd=o.cost_usd + cost, via="direct", request_id=req.request_id, attempts=attempt)
        ctx.record_spend(o.model, u, cost, answered=True)
        o.status, o.text, o.model_returned, o.via, o.paid_this_run = "ok", ans.text, ans.model_returned, "direct", True
        o.input_tokens += u.input_tokens
        o.output_tokens += u.output_tokens
        o.cached_tokens += u.cached_tokens
        o.cost_usd += cost
        o.attempts, o.latency_s = attempt, time.perf_counter() - t0
        return


async def run_direct(client: Any, todo: list["Outcome"], cfg: "GenerateConfig", ctx: RunContext, bar: Any,
                     on_done: Any = None) -> None:
    """Answer ``todo`` with ``cfg.concurrency`` workers (see the module docstring)."""
    ctx.limiter = make_limiter(cfg.rpm, cfg.tpm, cfg.concurrency, cfg.adapt_rate)
    ctx.breaker = Breaker(cfg.breaker_after)
    queue: asyncio.Queue[Outcome] = asyncio.Queue()
    for o in todo:
        queue.put_nowait(o)
    rng = random.Random()

    async def worker() -> None:
        while True:
            try:
                o = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await _answer_one(client, o, cfg, ctx, rng)
            if on_done is not None:
                on_done(o)
            bar.update(1)

    await asyncio.gather(*(worker() for _ in range(min(cfg.concurrency, max(1, len(todo))))))


async def recover(client: Any, todo: list["Outcome"], cfg: "GenerateConfig", ctx: RunContext,
                  notes: list[str]) -> int:
    """Collect answers of calls a killed run left in flight; returns how many were recovered."""
    from cen.generate.openai_backend import find_stored

    cache, ledger = ctx.cache, ctx.ledger
    by_key = {o.key: o for o in todo}
    stale = [r for r in cache.in_flight() if r.cache_key in by_key and r.batch_id is None]
    if not stale:
        return 0
    if not cfg.recover_in_flight:
        notes.append(f"{len(stale)} requests were in flight when a previous run stopped; they are sent again and may "
                     "be billed twice (at most --concurrency per kill; --recover-in-flight collects them instead)")
        return 0
    grace = cfg.recover_grace if cfg.recover_grace is not None else cfg.timeout
    wait = max((r.sent_at or 0) + grace - time.time() for r in stale)
    if wait > 0:
        await asyncio.sleep(wait)
    found = 0
    for r in stale:
        try:
            ans = await find_stored(client, r.cache_key)
        except Exception as exc:  # noqa: BLE001 - a server without the listing endpoint, or a bad stored answer
            notes.append(f"server cannot list stored completions ({type(exc).__name__}); {len(stale) - found} "
                         "in-flight requests of a previous run are sent again and may be billed twice")
            return found
        if ans is None:
            continue
        o = by_key[r.cache_key]
        u = ans.usage
        cost = ledger.charge(o.model, u.input_tokens, u.output_tokens, u.cached_tokens)
        cache.complete(o.key, model_requested=o.model, model_returned=ans.model_returned, text=ans.text,
                       input_tokens=u.input_tokens, output_tokens=u.output_tokens, cost_usd=cost,
                       via="recovered", request_id=o.request.request_id, attempts=r.attempts)
        ctx.record_spend(o.model, u, cost, answered=True)
        o.status, o.text, o.model_returned, o.via = "recovered", ans.text, ans.model_returned, "recovered"
        o.input_tokens, o.output_tokens, o.cached_tokens = u.input_tokens, u.output_tokens, u.cached_tokens
        o.cost_usd, o.attempts = cost, r.attempts
        found += 1
    notes.append(f"{len(stale)} requests were in flight when a previous run stopped: {found} answers recovered "
                 f"from the server, {len(stale) - found} sent again")
    return found
