"""Cost ledger of a run: tokens and money per model, and a budget that stops before it is exceeded.

Before a request is sent, :meth:`CostLedger.reserve` books its worst case (prompt tokens + the
full ``max_tokens`` of output at the model's price); the request is refused if spent + booked +
this worst case would pass the budget. When the answer arrives, :meth:`CostLedger.settle`
replaces the booking with the real cost from the returned usage. So the money spent can never
exceed the budget, whatever the concurrency.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Mapping

import pandas as pd

from cen.prompting import Price, cost_usd


class BudgetExceeded(RuntimeError):
    """A request was not sent because its worst-case cost would pass the budget."""


@dataclass
class CostLedger:
    """Money and tokens of one run (``budget_usd=None``: no limit)."""

    budget_usd: float | None = None
    prices: Mapping[str, Price] | None = None
    batch: bool = False
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    per_model: dict[str, dict[str, float]] = field(default_factory=dict)
    unpriced_models: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def worst_case(self, model: str, input_tokens: int, max_tokens: int) -> float:
        """Upper bound of one call's cost (0 for an unpriced model, which is then reported)."""
        c = cost_usd(model, input_tokens, max_tokens, prices=self.prices, batch=self.batch)
        if math.isnan(c):
            self.unpriced_models.add(model)
            return 0.0
        return c

    def reserve(self, model: str, input_tokens: int, max_tokens: int) -> float:
        """Book a call's worst case; raises :class:`BudgetExceeded` if it does not fit."""
        amount = self.worst_case(model, input_tokens, max_tokens)
        with self._lock:
            if self.budget_usd is not None and self.spent_usd + self.reserved_usd + amount > self.budget_usd + 1e-12:
                raise BudgetExceeded(
                    f"budget {self.budget_usd:.4f} USD: spent {self.spent_usd:.4f}, booked {self.reserved_usd:.4f}, "
                    f"this call up to {amount:.4f}"
                )
            self.reserved_usd += amount
        return amount

    def settle(self, reserved: float, model: str, input_tokens: int, output_tokens: int) -> float:
        """Replace a booking by the real cost of the answer; returns that cost (NaN -> 0 if unpriced)."""
        c = cost_usd(model, input_tokens, output_tokens, prices=self.prices, batch=self.batch)
        c = 0.0 if math.isnan(c) else c
        with self._lock:
            self.reserved_usd -= reserved
            self.spent_usd += c
            row = self.per_model.setdefault(model, {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
            row["calls"] += 1
            row["input_tokens"] += input_tokens
            row["output_tokens"] += output_tokens
            row["cost_usd"] += c
        return c

    def cancel(self, reserved: float) -> None:
        """Drop a booking whose call failed without an answer."""
        with self._lock:
            self.reserved_usd -= reserved

    def remaining(self) -> float:
        """Budget left after spending and bookings (inf without a budget)."""
        if self.budget_usd is None:
            return math.inf
        return self.budget_usd - self.spent_usd - self.reserved_usd

    def frame(self) -> pd.DataFrame:
        """One row per model: calls, input/output tokens, cost in USD."""
        rows = [{"model": m, **v} for m, v in self.per_model.items()]
        return pd.DataFrame(rows, columns=["model", "calls", "input_tokens", "output_tokens", "cost_usd"])
