"""The ``openai`` backend: one chat completion through the real ``openai`` client, with retries.

Any OpenAI-compatible server works through ``base_url`` (OpenAI, Azure's v1 endpoint, vLLM,
Ollama, LM Studio). The API key is read from the environment variable ``api_key_env``
(default ``OPENAI_API_KEY``) when the client is made; it is never a parameter, never logged and
never written to the cache or the tables.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import time
from dataclasses import dataclass
from typing import Any

from cen.generate.ratelimit import backoff_delay

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}


class CallFailed(RuntimeError):
    """A request failed for good (after the last retry, or on a non-retryable error)."""

    def __init__(self, message: str, *, status: str, attempts: int) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


@dataclass
class Answer:
    """What a successful call returned."""

    text: str
    model_returned: str | None
    input_tokens: int
    output_tokens: int
    attempts: int
    completion_id: str | None = None


def make_client(base_url: str | None = None, *, api_key_env: str = "OPENAI_API_KEY", timeout: float = 60.0,
                max_connections: int = 256) -> Any:
    """An ``AsyncOpenAI`` client with our own retries (the client's are switched off)."""
    import httpx
    from openai import AsyncOpenAI, DefaultAsyncHttpxClient

    key = os.environ.get(api_key_env)
    if not key:
        raise RuntimeError(
            f"environment variable {api_key_env} is not set; export the API key there "
            "(any non-empty value for a local server that ignores keys)"
        )
    http = DefaultAsyncHttpxClient(
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        timeout=timeout,
    )
    return AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=timeout, http_client=http)


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server's ``Retry-After`` / ``retry-after-ms`` of an API error, in seconds (None if absent)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def classify(exc: BaseException) -> tuple[str, bool]:
    """``(status, retryable)`` of an exception raised by a call."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "timeout", True
    if isinstance(exc, openai.APIConnectionError):
        return "connection_error", True
    if isinstance(exc, openai.APIResponseValidationError):
        return "malformed", True
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        return f"http_{code}", code in RETRYABLE_STATUS
    if isinstance(exc, (json.JSONDecodeError, ValueError, KeyError, TypeError, AttributeError)):
        return "malformed", True
    return type(exc).__name__, False


def _answer_from(resp: Any, attempts: int) -> Answer:
    """Validate a ChatCompletion and extract the answer (raises ValueError when malformed)."""
    choices = getattr(resp, "choices", None)
    if not choices:
        raise ValueError("response without choices")
    text = choices[0].message.content
    if not isinstance(text, str) or not text.strip():
        raise ValueError("response without text content")
    usage = getattr(resp, "usage", None)
    return Answer(
        text=text, model_returned=getattr(resp, "model", None),
        input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        attempts=attempts, completion_id=getattr(resp, "id", None),
    )


async def call_chat(
    client: Any,
    *,
    model: str,
    messages: list[dict[str, Any]],
    params: dict[str, Any],
    max_retries: int = 6,
    backoff_base: float = 0.5,
    backoff_cap: float = 60.0,
    metadata: dict[str, str] | None = None,
    store: bool = False,
    before_attempt: Any = None,
    rng: random.Random | None = None,
) -> Answer:
    """One chat completion with retries on 429 / 5xx / timeouts / malformed answers.

    ``before_attempt(attempt)`` is awaited-or-called before every attempt (the runner records the
    request as in flight there). Waits honour ``Retry-After``. Raises :class:`CallFailed`.
    """
    from openai.types.chat import ChatCompletion

    extra: dict[str, Any] = dict(params)
    if store:
        extra["store"] = True
        extra["metadata"] = metadata or {}
    attempt = 0
    while True:
        attempt += 1
        if before_attempt is not None:
            res = before_attempt(attempt)
            if asyncio.iscoroutine(res):
                await res
        try:
            # the client's documented raw route: same auth, base_url, errors and response model as
            # chat.completions.create, without its per-call TypedDict transform of the messages
            # (about 2 ms of CPU per request, the largest client cost at high concurrency)
            resp = await client.post("/chat/completions", cast_to=ChatCompletion,
                                     body={"model": model, "messages": messages, **extra})
            return _answer_from(resp, attempt)
        except Exception as exc:  # noqa: BLE001 - classified below
            status, retryable = classify(exc)
            if not retryable or attempt > max_retries:
                raise CallFailed(f"{status}: {str(exc)[:300]}", status=status, attempts=attempt) from exc
            await asyncio.sleep(backoff_delay(attempt, base=backoff_base, cap=backoff_cap,
                                              retry_after=retry_after_seconds(exc), rng=rng))


async def find_stored(client: Any, key: str) -> Answer | None:
    """The stored completion the server kept for ``metadata.cen_cache_key == key``, if any.

    Raises whatever the client raises when the server does not offer the listing endpoint.
    """
    page = await client.chat.completions.list(metadata={"cen_cache_key": key}, limit=1)
    for resp in page.data:
        return _answer_from(resp, 0)
    return None
