"""Cost ledger of a run: tokens and money per model, and a budget that holds across invocations.

A *run* is named by its workdir + model + paradigms (or ``run_name``); every paid answer is
recorded in the cache's ``spend`` table under that name (:meth:`GenerationCache.add_spend`), so
``budget_usd`` caps the total of all invocations of the run, not each one: a second invocation
starts with ``prior_usd`` = what the earlier ones spent.

Before a request is sent, :meth:`CostLedger.reserve` books its worst case (prompt tokens + the
full ``max_tokens`` of output at the model's price); the request is refused if prior + spent +
booked + this worst case would pass the budget. When an answer arrives (also a malformed one the
provider billed), :meth:`CostLedger.settle` / :meth:`CostLedger.charge` record its real cost from
the returned usage, cached prompt tokens at the model's cached-input rate. So the money spent can
never exceed the budget, whatever the concurrency.

A model without a price cannot be budgeted: :func:`check_priced` refuses to start such a run.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import pandas as pd

from cen.prompting import Price, cost_usd, price_for


class BudgetExceeded(RuntimeError):
    """A request was not sent because its worst-case cost would pass the budget."""


def check_priced(models: Iterable[str], prices: Mapping[str, Price] | None, budget_usd: float | None) -> list[str]:
    """Models of a run without a known price; raises ``ValueError`` when a budget is set and one is
    unpriced (a budget over an unknown price is no budget)."""
    unpriced = sorted({m for m in models if price_for(m, prices) is None})
    if unpriced and budget_usd is not None:
        raise ValueError(
            f"no price for model {unpriced[0]!r} (not in cen.prompting.PRICES; a similar id is not used), so a "
            "budget cannot be kept: give its prices with --price-in and --price-out (USD per million tokens; "
            "notebook 03: price_in / price_out), or run without --budget")
    return unpriced


@dataclass
class CostLedger:
    """Money and tokens of one invocation of a run (``budget_usd=None``: no limit)."""

    budget_usd: float | None = None
    prices: Mapping[str, Price] | None = None
    batch: bool = False
    prior_usd: float = 0.0
    """What earlier invocations of the same run spent (counted against the budget)."""
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    per_model: dict[str, dict[str, float]] = field(default_factory=dict)
    unpriced_models: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _cost(self, model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        c = cost_usd(model, input_tokens, output_tokens, prices=self.prices, batch=self.batch,
                     cached_tokens=cached_tokens)
        if math.isnan(c):
            self.unpriced_models.add(model)
            return 0.0
        return c

    def worst_case(self, model: str, input_tokens: int, max_tokens: int) -> float:
        """Upper bound of one call's cost (0 for an unpriced model, which is then reported)."""
        return self._cost(model, input_tokens, max_tokens)

    def reserve(self, model: str, input_tokens: int, max_tokens: int) -> float:
        """Book a call's worst case; raises :class:`BudgetExceeded` if it does not fit."""
        amount = self.worst_case(model, input_tokens, max_tokens)
        with self._lock:
            total = self.prior_usd + self.spent_usd + self.reserved_usd
            if self.budget_usd is not None and total + amount > self.budget_usd + 1e-12:
                raise BudgetExceeded(
                    f"budget {self.budget_usd:.4f} USD: spent {self.prior_usd + self.spent_usd:.4f} "
                    f"({self.prior_usd:.4f} by earlier invocations), booked {self.reserved_usd:.4f}, "
                    f"this call up to {amount:.4f}")
            self.reserved_usd += amount
        return amount

    def charge(self, model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0, *,
               answered: bool = True) -> float:
        """Record billed tokens (``answered=False``: a malformed answer, billed but unusable); returns the cost."""
        c = self._cost(model, input_tokens, output_tokens, cached_tokens)
        with self._lock:
            self.spent_usd += c
            row = self.per_model.setdefault(model, {"calls": 0, "billed_unusable": 0, "input_tokens": 0,
                                                    "cached_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
            row["calls" if answered else "billed_unusable"] += 1
            row["input_tokens"] += input_tokens
            row["cached_tokens"] += cached_tokens
            row["output_tokens"] += output_tokens
            row["cost_usd"] += c
        return c

    def settle(self, reserved: float, model: str, input_tokens: int, output_tokens: int,
               cached_tokens: int = 0) -> float:
        """Replace a booking by the real cost of the answer; returns that cost (0 if unpriced)."""
        with self._lock:
            self.reserved_usd -= reserved
        return self.charge(model, input_tokens, output_tokens, cached_tokens)

    def cancel(self, reserved: float) -> None:
        """Drop a booking whose call ended without an answer."""
        with self._lock:
            self.reserved_usd -= reserved

    @property
    def run_total_usd(self) -> float:
        """Spent by the whole run: earlier invocations and this one."""
        return self.prior_usd + self.spent_usd

    def remaining(self) -> float:
        """Budget left after spending and bookings (inf without a budget)."""
        if self.budget_usd is None:
            return math.inf
        return self.budget_usd - self.prior_usd - self.spent_usd - self.reserved_usd

    def frame(self) -> pd.DataFrame:
        """One row per model: answered calls, billed unusable answers, input / cached / output tokens, USD."""
        rows = [{"model": m, **v} for m, v in self.per_model.items()]
        return pd.DataFrame(rows, columns=["model", "calls", "billed_unusable", "input_tokens", "cached_tokens",
                                           "output_tokens", "cost_usd"])
