"""OpenAI Batch API mode: JSONL with ``custom_id`` = cache key, upload, poll, collect into the cache.

Flow: batches a previous run submitted and did not collect are polled first (never paid
again); requests already answered or inside such a batch are skipped; the rest are booked
against the budget (worst case at the batch price; what does not fit is ``budget_stopped``),
written as JSONL (at most ``batch_max_requests`` lines per file), uploaded with
``purpose="batch"``, submitted to ``/v1/chat/completions`` with a 24 h window, recorded in the
cache's ``batches`` table at once, polled every ``batch_poll`` seconds, and collected: each
output line's ``custom_id`` names the cache row it answers; error lines and lines missing from
the output become ``failed``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from cen.generate.ledger import BudgetExceeded
from cen.generate.openai_backend import Usage
from cen.prompting import count_message_tokens

if TYPE_CHECKING:
    from cen.generate.direct import RunContext
    from cen.generate.runner import GenerateConfig, Outcome

TERMINAL = {"completed", "failed", "expired", "cancelled"}


def batch_line(o: "Outcome", params: dict[str, Any]) -> str:
    """One JSONL line of a batch input file."""
    body = {"model": o.model, "messages": o.request.messages, **params}
    return json.dumps({"custom_id": o.key, "method": "POST", "url": "/v1/chat/completions", "body": body},
                      ensure_ascii=False, separators=(",", ":"))


async def _read_file(client: Any, file_id: str) -> str:
    content = await client.files.content(file_id)
    return content.text


async def _wait(client: Any, batch_id: str, cfg: "GenerateConfig") -> Any:
    start = time.monotonic()
    while True:
        batch = await client.batches.retrieve(batch_id)
        if batch.status in TERMINAL:
            return batch
        if time.monotonic() - start > cfg.batch_timeout:
            raise TimeoutError(f"batch {batch_id} still {batch.status} after {cfg.batch_timeout:.0f} s; "
                               "re-run to keep polling it (it is recorded in the cache)")
        await asyncio.sleep(cfg.batch_poll)


async def _collect(client: Any, batch_id: str, keys: list[str], by_key: dict[str, "Outcome"],
                   cfg: "GenerateConfig", ctx: "RunContext") -> None:
    cache, ledger = ctx.cache, ctx.ledger
    batch = await _wait(client, batch_id, cfg)
    seen: set[str] = set()
    if batch.output_file_id:
        for line in (await _read_file(client, batch.output_file_id)).splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key = item.get("custom_id")
            resp = (item.get("response") or {})
            body = resp.get("body") or {}
            o = by_key.get(key)
            model = o.model if o else body.get("model", "unknown")
            seen.add(key)
            try:
                if resp.get("status_code") != 200:
                    raise ValueError(f"status {resp.get('status_code')}")
                text = body["choices"][0]["message"]["content"]
                if not isinstance(text, str) or not text.strip():
                    raise ValueError("no text")
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                usage = body.get("usage") if isinstance(body, dict) else None
                if resp.get("status_code") == 200 and isinstance(usage, dict):  # billed, but unusable
                    u = Usage(int(usage.get("prompt_tokens", 0) or 0), int(usage.get("completion_tokens", 0) or 0))
                    cost = ledger.charge(model, u.input_tokens, u.output_tokens, answered=False)
                    ctx.record_spend(model, u, cost, answered=False)
                    if o:
                        o.input_tokens, o.output_tokens, o.cost_usd = u.input_tokens, u.output_tokens, cost
                cache.fail(key, model, f"batch {batch_id}: malformed line ({exc})", 1)
                if o:
                    o.status, o.error = "failed", f"batch {batch_id}: malformed line ({exc})"
                continue
            usage = body.get("usage") or {}
            details = usage.get("prompt_tokens_details") or {}
            u = Usage(int(usage.get("prompt_tokens", 0) or 0), int(usage.get("completion_tokens", 0) or 0),
                      int(details.get("cached_tokens", 0) or 0))
            cost = ledger.charge(model, u.input_tokens, u.output_tokens, u.cached_tokens)
            cache.complete(key, model_requested=model, model_returned=body.get("model"), text=text,
                           input_tokens=u.input_tokens, output_tokens=u.output_tokens, cost_usd=cost, via="batch",
                           attempts=1, batch_id=batch_id)
            ctx.record_spend(model, u, cost, answered=True)
            if o:
                o.status, o.text, o.model_returned, o.via, o.paid_this_run = "ok", text, body.get("model"), "batch", True
                o.input_tokens, o.output_tokens, o.cached_tokens = u.input_tokens, u.output_tokens, u.cached_tokens
                o.cost_usd, o.attempts = cost, 1
    if batch.error_file_id:
        for line in (await _read_file(client, batch.error_file_id)).splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key = item.get("custom_id")
            seen.add(key)
            msg = json.dumps(item.get("error") or (item.get("response") or {}).get("body"))[:300]
            o = by_key.get(key)
            cache.fail(key, o.model if o else "unknown", f"batch {batch_id}: {msg}", 1)
            if o:
                o.status, o.error = "failed", f"batch {batch_id}: {msg}"
    for key in keys:
        if key not in seen:
            o = by_key.get(key)
            cache.fail(key, o.model if o else "unknown", f"batch {batch_id} ended {batch.status} without this request", 1)
            if o:
                o.status, o.error = "failed", f"batch {batch_id} ended {batch.status} without this request"
    cache.finish_batch(batch_id, batch.status)


async def run_batch(client: Any, todo: list["Outcome"], cfg: "GenerateConfig", ctx: "RunContext",
                    notes: list[str]) -> None:
    """Answer ``todo`` (not yet in the cache) through the Batch API; see the module docstring.

    Raises ``RuntimeError`` naming the endpoint when the server offers no Batch API.
    """
    import openai

    try:
        await _run_batch(client, todo, cfg, ctx, notes)
    except openai.APIStatusError as exc:
        path = exc.request.url.path if getattr(exc, "request", None) is not None else "the Batch API"
        raise RuntimeError(f"{cfg.base_url or 'api.openai.com'}: {path} answered HTTP {exc.status_code}; this server "
                           "offers no Batch API (use --mode direct)") from exc
    except openai.APIConnectionError as exc:
        raise RuntimeError(f"{cfg.base_url or 'api.openai.com'}: cannot reach the Batch API ({exc})") from exc


async def _run_batch(client: Any, todo: list["Outcome"], cfg: "GenerateConfig", ctx: "RunContext",
                     notes: list[str]) -> None:
    from cen.generate.runner import request_params

    cache, ledger, run_id = ctx.cache, ctx.ledger, ctx.invocation

    by_key = {o.key: o for o in todo}
    pending = cache.pending_batches()
    in_pending = {k for _, keys in pending for k in keys}
    for batch_id, keys in pending:
        notes.append(f"polling batch {batch_id} submitted by a previous run ({len(keys)} requests)")
        await _collect(client, batch_id, keys, by_key, cfg, ctx)
    fresh = [o for o in todo if o.key not in in_pending and o.status == "pending"]
    chosen: list[Any] = []
    for o in fresh:
        n_in = count_message_tokens(o.request.messages, o.model, cfg.prices)[0]
        try:
            booked = ledger.reserve(o.model, n_in, o.request.max_tokens)
        except BudgetExceeded as exc:
            o.status, o.error = "budget_stopped", str(exc)
            continue
        chosen.append((o, booked))
    for start in range(0, len(chosen), cfg.batch_max_requests):
        part = chosen[start : start + cfg.batch_max_requests]
        jsonl = "".join(batch_line(o, request_params(o.request, cfg)) + "\n" for o, _ in part).encode("utf-8")
        uploaded = await client.files.create(file=(f"cen-{run_id}-{start}.jsonl", jsonl), purpose="batch")
        batch = await client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                            completion_window="24h", metadata={"cen_run": run_id})
        keys = [o.key for o, _ in part]
        cache.add_batch(batch.id, uploaded.id, keys)
        for o, booked in part:
            ledger.cancel(booked)  # the real cost is booked when the answers are collected
        await _collect(client, batch.id, keys, by_key, cfg, ctx)
