"""The ``openai`` backend: one chat-completion attempt through the real ``openai`` client.

Any OpenAI-compatible server works through ``base_url`` (OpenAI, Azure's v1 endpoint, vLLM,
Ollama, LM Studio). The API key is read from the environment variable ``api_key_env``
(default ``OPENAI_API_KEY``) when the client is made; it is never a parameter, never logged and
never written to the cache or the tables.

:func:`send_once` makes one attempt through ``client.chat.completions.with_raw_response.create``
(the client's own path; ``benchmarks/bench_generate.py`` measures it against the raw
``client.post`` route, which saves only a fraction of a millisecond per request) and returns an
:class:`Answer` with the response headers, or raises :class:`AttemptError` saying whether the
failure can succeed on retry (429, 5xx, timeouts, malformed HTTP-200 answers) and, for a
malformed 200, the tokens it was billed for. Retries, pacing and the circuit breaker live in
:mod:`cen.generate.direct`.
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

RETRYABLE_STATUS = {408, 409, 429}
"""HTTP statuses below 500 worth retrying (every 5xx is retried too)."""

BREAKER_STATUS = {401: "unauthorized (check the API key)", 403: "forbidden (check the key's access to the model)",
                  404: "not found (check --model and --base-url)"}
"""Non-retryable statuses that trip the circuit breaker, with what to check."""


@dataclass
class Usage:
    """Billed tokens of one answer: prompt (including cached), cached prompt, completion."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False
    """True when the answer had no readable usage and the tokens are the runner's estimate."""


@dataclass
class Answer:
    """What a successful attempt returned."""

    text: str
    model_returned: str | None
    usage: Usage
    headers: Mapping[str, str] = field(default_factory=dict)
    completion_id: str | None = None

    @property
    def input_tokens(self) -> int:
        return self.usage.input_tokens

    @property
    def output_tokens(self) -> int:
        return self.usage.output_tokens


class AttemptError(RuntimeError):
    """One attempt failed. ``status``: ``http_<code>``, ``timeout``, ``malformed``,
    ``connection_refused``, ``dns``, ``connection_error``; ``retryable``: worth another attempt;
    ``breaker``: counts toward the circuit breaker (the same failure for every request);
    ``usage``: billed tokens of a malformed 200 answer (None when nothing was billed or readable)."""

    def __init__(self, status: str, message: str, *, retryable: bool, breaker: bool = False,
                 retry_after: float | None = None, headers: Mapping[str, str] | None = None,
                 usage: Usage | None = None, billed: bool = False) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.retryable = retryable
        self.breaker = breaker
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        self.usage = usage
        self.billed = billed


class CallFailed(RuntimeError):
    """A request failed for good (after the last retry, on a non-retryable error, or stopped)."""

    def __init__(self, message: str, *, status: str, attempts: int) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


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


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The server's ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date), in seconds."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _connect_reason(exc: BaseException) -> str | None:
    """``connection_refused`` / ``dns`` when the request never reached a server, else None."""
    import httpx

    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, httpx.ConnectError) or isinstance(cur, ConnectionRefusedError):
            text = str(cur).lower()
            if "name or service" in text or "nodename" in text or "getaddrinfo" in text or "name resolution" in text:
                return "dns"
            return "connection_refused"
        if isinstance(cur, OSError) and getattr(cur, "errno", None) in (-2, -3, -5):  # EAI_NONAME, EAI_AGAIN, EAI_NODATA
            return "dns"
        cur = cur.__cause__ or cur.__context__
    return None


def usage_of(body: Mapping[str, Any] | None) -> Usage | None:
    """Billed tokens of a chat-completion body (None when it carries no usage)."""
    usage = (body or {}).get("usage") if isinstance(body, Mapping) else None
    if not isinstance(usage, Mapping):
        return None
    details = usage.get("prompt_tokens_details") or {}
    try:
        return Usage(input_tokens=int(usage.get("prompt_tokens") or 0),
                     output_tokens=int(usage.get("completion_tokens") or 0),
                     cached_tokens=int((details.get("cached_tokens") if isinstance(details, Mapping) else 0) or 0))
    except (TypeError, ValueError):
        return None


def answer_from_body(body: Any, headers: Mapping[str, str] | None = None) -> Answer:
    """Validate a chat-completion JSON body; raises :class:`AttemptError` (``malformed``, with the
    billed usage when the body has one) for empty choices or missing text."""
    if not isinstance(body, Mapping):
        raise AttemptError("malformed", "answer is not a JSON object", retryable=True, headers=headers, billed=True)
    usage = usage_of(body)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise AttemptError("malformed", "answer without choices", retryable=True, headers=headers, usage=usage,
                           billed=True)
    message = choices[0].get("message") if isinstance(choices[0], Mapping) else None
    text = message.get("content") if isinstance(message, Mapping) else None
    if not isinstance(text, str) or not text.strip():
        raise AttemptError("malformed", "answer without text content", retryable=True, headers=headers, usage=usage,
                           billed=True)
    return Answer(text=text, model_returned=body.get("model"), usage=usage or Usage(),
                  headers=dict(headers or {}), completion_id=body.get("id"))


def classify(exc: BaseException) -> AttemptError:
    """The :class:`AttemptError` of an exception raised by the client."""
    import openai

    if isinstance(exc, AttemptError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return AttemptError("timeout", "no answer within --timeout", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        reason = _connect_reason(exc)
        if reason == "dns":
            return AttemptError("dns", "host name not found (check --base-url)", retryable=False, breaker=True)
        if reason == "connection_refused":
            return AttemptError("connection_refused", "connection refused (check --base-url and that the server is up)",
                                retryable=False, breaker=True)
        return AttemptError("connection_error", str(exc)[:200] or "connection dropped", retryable=True)
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        headers = dict(exc.response.headers) if getattr(exc, "response", None) is not None else {}
        msg = str(exc)[:300]
        if code in BREAKER_STATUS:
            return AttemptError(f"http_{code}", f"{BREAKER_STATUS[code]}; {msg}", retryable=False, breaker=True,
                                headers=headers)
        return AttemptError(f"http_{code}", msg, retryable=code >= 500 or code in RETRYABLE_STATUS,
                            retry_after=retry_after_seconds(headers), headers=headers)
    return AttemptError(type(exc).__name__, str(exc)[:300], retryable=False)


async def send_once(client: Any, *, model: str, messages: list[dict[str, Any]], params: Mapping[str, Any],
                    store: bool = False, metadata: Mapping[str, str] | None = None,
                    timeout: float | None = None) -> Answer:
    """One chat-completion attempt; returns the :class:`Answer` (with the response headers) or raises
    :class:`AttemptError`. ``store=True`` asks the provider to keep the completion (with
    ``metadata``) so a killed run can collect it (see :mod:`cen.generate.recover`)."""
    extra: dict[str, Any] = dict(params)
    if store:
        extra["store"] = True
        extra["metadata"] = dict(metadata or {})
    if timeout is not None:
        extra["timeout"] = timeout
    try:
        raw = await client.chat.completions.with_raw_response.create(model=model, messages=messages, **extra)
    except Exception as exc:  # noqa: BLE001 - classified
        raise classify(exc) from exc
    headers = dict(raw.headers)
    try:
        body = json.loads(raw.text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AttemptError("malformed", f"answer is not JSON ({exc.msg if hasattr(exc, 'msg') else exc})",
                           retryable=True, headers=headers, billed=True) from exc
    return answer_from_body(body, headers)


async def find_stored(client: Any, key: str) -> Answer | None:
    """The stored completion the server kept for ``metadata.cen_cache_key == key``, if any.

    Raises whatever the client raises when the server does not offer the listing endpoint.
    """
    page = await client.chat.completions.list(metadata={"cen_cache_key": key}, limit=1)
    for resp in page.data:
        body = resp.model_dump() if hasattr(resp, "model_dump") else resp
        return answer_from_body(body)
    return None
