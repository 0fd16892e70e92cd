"""Pacing requests under requests-per-minute and tokens-per-minute limits, and retry back-off.

Two limiters share one interface (``await acquire(tokens) -> ticket``, ``await release(ticket, ...)``):

* :class:`RateLimiter` -- fixed buckets from ``--rpm`` / ``--tpm`` only (the behaviour before
  the limiter read the provider's headers; kept for comparison and for servers without them);
* :class:`AdaptiveLimiter` -- the default. It reads OpenAI's ``x-ratelimit-limit-*``,
  ``x-ratelimit-remaining-*`` and ``x-ratelimit-reset-*`` headers (:func:`read_limits`,
  durations such as ``6m0s``, ``1s``, ``20ms``: :func:`parse_duration`) and keeps a mirror of the
  provider's two buckets: capacity = the limit, refill rate = (limit - remaining) / reset as the
  provider reports it, level corrected down whenever the provider reports less than the mirror
  expected beyond what the other requests in flight can explain (they may have reached the
  provider first). Requests are admitted against the mirror at ``safety`` (0.97) of the provider's
  rate, counting tokens as the provider does: prompt tokens plus the full ``max_tokens``,
  reserved at admission (the prompt count is the offline estimate scaled by the ratio of the
  provider's ``usage.prompt_tokens`` to that estimate, learnt from the answers). Until the first
  answer says whether the server has limits, one request is in flight. A 429 pauses every
  admission for its ``Retry-After`` and shrinks the number in flight (it grows back by one per
  success up to ``concurrency``).
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from dataclasses import dataclass
from typing import Mapping

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str | None) -> float | None:
    """Seconds of a Go-style duration as OpenAI sends it (``6m0s``, ``1s``, ``20ms``, ``1h2m3.5s``,
    ``0.5``); None when absent or unreadable."""
    if text is None:
        return None
    s = str(text).strip().lower()
    if not s:
        return None
    try:
        return max(0.0, float(s))
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    return total if pos == len(s) and pos > 0 else None


@dataclass
class ProviderLimits:
    """One answer's ``x-ratelimit-*`` headers (None where a header is absent)."""

    limit_requests: float | None = None
    limit_tokens: float | None = None
    remaining_requests: float | None = None
    remaining_tokens: float | None = None
    reset_requests: float | None = None
    reset_tokens: float | None = None


def read_limits(headers: Mapping[str, str] | None) -> ProviderLimits | None:
    """The rate-limit headers of an answer, or None when it has none."""
    if not headers:
        return None
    h = {k.lower(): v for k, v in headers.items()}

    def num(name: str) -> float | None:
        try:
            return float(h[name]) if name in h else None
        except ValueError:
            return None

    lim = ProviderLimits(
        limit_requests=num("x-ratelimit-limit-requests"), limit_tokens=num("x-ratelimit-limit-tokens"),
        remaining_requests=num("x-ratelimit-remaining-requests"), remaining_tokens=num("x-ratelimit-remaining-tokens"),
        reset_requests=parse_duration(h.get("x-ratelimit-reset-requests")),
        reset_tokens=parse_duration(h.get("x-ratelimit-reset-tokens")),
    )
    if lim.limit_requests is None and lim.limit_tokens is None:
        return None
    return lim


class TokenBucket:
    """A bucket of ``per_minute`` units refilled continuously (``per_minute / 60`` per second).

    Starts full, so a short run is not slowed down; a long run settles at the limit.
    """

    def __init__(self, per_minute: float, *, rate_per_s: float | None = None, level: float | None = None) -> None:
        if per_minute <= 0:
            raise ValueError(f"a rate limit must be positive, got {per_minute}")
        self.capacity = float(per_minute)
        self.rate = float(rate_per_s) if rate_per_s else per_minute / 60.0
        self.level = float(per_minute) if level is None else float(level)
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self, amount: float) -> float:
        """Seconds until ``amount`` units are available (0 if now); amounts above capacity wait for a full bucket."""
        self._refill()
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        self._refill()
        self.level -= min(amount, self.capacity)

    def give(self, amount: float) -> None:
        self._refill()
        self.level = min(self.capacity, self.level + amount)

    def current(self) -> float:
        self._refill()
        return self.level


@dataclass
class Ticket:
    """One admitted request: what it reserved and what the mirror held after it."""

    tokens: float
    belief_tokens: float | None = None
    belief_requests: float | None = None
    correction_tokens: float = 0.0
    correction_requests: float = 0.0


class RateLimiter:
    """Fixed RPM and TPM limits shared by all requests of a run (``None`` = unlimited); reads no headers."""

    adaptive = False

    def __init__(self, rpm: float | None = None, tpm: float | None = None, concurrency: int | None = None) -> None:
        self.rpm = TokenBucket(rpm) if rpm else None
        self.tpm = TokenBucket(tpm) if tpm else None
        self._lock = asyncio.Lock()
        self.waited = 0.0
        """Total seconds requests spent waiting for the limiter."""
        self.rejected = 0

    def prompt_tokens(self, estimate: int) -> int:
        """Tokens the provider will count for a prompt estimated at ``estimate``."""
        return int(estimate)

    async def acquire(self, prompt_tokens: float, max_tokens: float = 0) -> Ticket:
        """Wait (first come, first served) until one request of ``prompt_tokens + max_tokens`` tokens may be sent."""
        tokens = prompt_tokens + max_tokens
        if self.rpm is None and self.tpm is None:
            return Ticket(tokens)
        async with self._lock:
            while True:
                wait = max(self.rpm.wait_time(1) if self.rpm else 0.0, self.tpm.wait_time(tokens) if self.tpm else 0.0)
                if wait <= 0:
                    break
                self.waited += wait
                await asyncio.sleep(wait)
            if self.rpm:
                self.rpm.take(1)
            if self.tpm:
                self.tpm.take(tokens)
        return Ticket(tokens)

    async def release(self, ticket: Ticket, headers: Mapping[str, str] | None = None, *, rejected: bool = False,
                      retry_after: float | None = None, prompt_ratio: float | None = None) -> None:
        """A request finished (``rejected``: answered 429)."""
        if rejected:
            self.rejected += 1


class AdaptiveLimiter:
    """Pace and in-flight count adapted to the provider's rate-limit headers (module docstring)."""

    adaptive = True

    def __init__(self, rpm: float | None = None, tpm: float | None = None, concurrency: int = 32, *,
                 safety: float = 0.97) -> None:
        self.user = RateLimiter(rpm, tpm)
        self.concurrency = max(1, int(concurrency))
        self.safety = float(safety)
        self.req: TokenBucket | None = None
        self.tok: TokenBucket | None = None
        self.known: bool | None = None
        """None until the first answer; then whether the server sends rate-limit headers."""
        self.window = 1.0
        self.in_flight = 0
        self.in_flight_tokens = 0.0
        self.pause_until = 0.0
        self.corr_req = 0.0
        self.corr_tok = 0.0
        self.ratio = 1.0
        self._ratio_n = 0
        self.waited = 0.0
        self.rejected = 0
        self._cond = asyncio.Condition()
        self._admit = asyncio.Lock()

    def prompt_tokens(self, estimate: int) -> int:
        """Tokens the provider will count for a prompt estimated at ``estimate`` (learnt ratio)."""
        return int(math.ceil(estimate * self.ratio))

    def _window(self) -> int:
        return self.concurrency if self.known is False else max(1, min(self.concurrency, int(self.window)))

    async def acquire(self, prompt_tokens: float, max_tokens: float = 0) -> Ticket:
        """Wait until one request may be sent: a place in flight, and room in the mirrored buckets for
        its prompt (offline estimate x the learnt ratio, at admission) plus ``max_tokens``."""
        async with self._cond:
            while self.in_flight >= self._window():
                await self._cond.wait()
            self.in_flight += 1
        try:
            async with self._admit:
                while True:
                    tokens = self.prompt_tokens(prompt_tokens) + max_tokens
                    now = time.monotonic()
                    wait = self.pause_until - now
                    if self.req is not None:
                        wait = max(wait, self.req.wait_time(1))
                    if self.tok is not None:
                        wait = max(wait, self.tok.wait_time(tokens))
                    if wait <= 0:
                        break
                    self.waited += wait
                    await asyncio.sleep(wait)
                await self.user.acquire(tokens)
                tokens = self.prompt_tokens(prompt_tokens) + max_tokens
                t = Ticket(tokens, correction_tokens=self.corr_tok, correction_requests=self.corr_req)
                if self.req is not None:
                    self.req.take(1)
                    t.belief_requests = self.req.level
                if self.tok is not None:
                    self.tok.take(tokens)
                    t.belief_tokens = self.tok.level
                self.in_flight_tokens += tokens
                return t
        except BaseException:
            async with self._cond:
                self.in_flight -= 1
                self._cond.notify()
            raise

    def _mirror(self, bucket: TokenBucket | None, limit: float | None, remaining: float | None, reset: float | None,
                amount: float, belief: float | None, corr_then: float, corr_now: float,
                rejected: bool, tolerance: float) -> tuple[TokenBucket | None, float]:
        """Update one mirrored bucket from an answer's headers; returns (bucket, correction counter)."""
        if limit is None or limit <= 0 or remaining is None:
            return bucket, corr_now
        rate = None
        if reset is not None and reset > 0 and limit - remaining > 0:
            rate = (limit - remaining) / reset
        if bucket is None:
            bucket = TokenBucket(limit, rate_per_s=(rate or limit / 60.0) * self.safety, level=remaining)
            return bucket, corr_now
        bucket.capacity = float(limit)
        if rate is not None:
            bucket._refill()
            bucket.rate = 0.8 * bucket.rate + 0.2 * rate * self.safety
        if rejected:  # a 429 is answered at once: its remaining is the provider's level now
            bucket._refill()
            if bucket.level > remaining:
                corr_now += bucket.level - remaining
                bucket.level = remaining
            return bucket, corr_now
        if belief is not None:
            expected = belief
            # requests still in flight may have reached the provider before this one: that much is no drift
            drift = expected - remaining - (corr_now - corr_then) - tolerance
            if drift > 0:  # the provider holds less than the mirror thought: follow it down
                bucket._refill()
                bucket.level -= drift
                corr_now += drift
        return bucket, corr_now

    async def release(self, ticket: Ticket, headers: Mapping[str, str] | None = None, *, rejected: bool = False,
                      retry_after: float | None = None, prompt_ratio: float | None = None) -> None:
        """A request finished: learn from its headers (``rejected``: answered 429 with ``retry_after``)."""
        lim = read_limits(headers)
        others_tokens = max(0.0, self.in_flight_tokens - ticket.tokens)
        others_requests = max(0.0, self.in_flight - 1.0)
        if prompt_ratio is not None and prompt_ratio > 0 and not rejected:
            self._ratio_n += 1
            w = max(0.1, 1.0 / self._ratio_n)
            self.ratio = (1 - w) * self.ratio + w * prompt_ratio
        if lim is not None:
            if self.known is None:
                self.window = float(self.concurrency)
            self.known = True
            if rejected:  # the provider did not take this request
                if self.req is not None:
                    self.req.give(1)
                if self.tok is not None:
                    self.tok.give(ticket.tokens)
            self.req, self.corr_req = self._mirror(self.req, lim.limit_requests, lim.remaining_requests,
                                                   lim.reset_requests, 1.0, ticket.belief_requests,
                                                   ticket.correction_requests, self.corr_req, rejected, others_requests)
            self.tok, self.corr_tok = self._mirror(self.tok, lim.limit_tokens, lim.remaining_tokens,
                                                   lim.reset_tokens, ticket.tokens, ticket.belief_tokens,
                                                   ticket.correction_tokens, self.corr_tok, rejected, others_tokens)
        elif self.known is None and not rejected:
            self.known = False
        if rejected:
            self.rejected += 1
            self.window = max(1.0, self.window * 0.7)
            if retry_after:
                self.pause_until = max(self.pause_until, time.monotonic() + retry_after)
        elif self.known:
            self.window = min(float(self.concurrency), self.window + 1.0)
        async with self._cond:
            self.in_flight -= 1
            self.in_flight_tokens -= ticket.tokens
            self._cond.notify_all()


def make_limiter(rpm: float | None, tpm: float | None, concurrency: int, adaptive: bool = True) -> RateLimiter | AdaptiveLimiter:
    """The run's limiter: :class:`AdaptiveLimiter` by default, :class:`RateLimiter` with ``adaptive=False``."""
    return AdaptiveLimiter(rpm, tpm, concurrency) if adaptive else RateLimiter(rpm, tpm)


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 60.0, retry_after: float | None = None,
                  rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1 = first retry).

    Exponential back-off with full jitter (uniform in ``[0, min(cap, base * 2**(attempt-1))]``),
    but never less than the server's ``Retry-After`` when it sent one.
    """
    r = rng or random
    delay = r.uniform(0, min(cap, base * 2 ** (attempt - 1)))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
