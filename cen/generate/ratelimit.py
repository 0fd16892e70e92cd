"""Requests-per-minute and tokens-per-minute limiting, and retry back-off, for asyncio clients."""

from __future__ import annotations

import asyncio
import random
import time


class TokenBucket:
    """A bucket of ``per_minute`` units refilled continuously (``per_minute / 60`` per second).

    Starts full, so a short run is not slowed down; a long run settles at the limit.
    """

    def __init__(self, per_minute: float) -> None:
        if per_minute <= 0:
            raise ValueError(f"a rate limit must be positive, got {per_minute}")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = float(per_minute)
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


class RateLimiter:
    """RPM and TPM limits shared by all requests of a run (``None`` = unlimited)."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None) -> None:
        self.rpm = TokenBucket(rpm) if rpm else None
        self.tpm = TokenBucket(tpm) if tpm else None
        self._lock = asyncio.Lock()
        self.waited = 0.0
        """Total seconds requests spent waiting for the limiter."""

    async def acquire(self, tokens: int) -> None:
        """Wait (first come, first served) until one request of ``tokens`` tokens may be sent."""
        if self.rpm is None and self.tpm is None:
            return
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
