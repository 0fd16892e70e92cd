"""A local OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

Endpoints: ``POST /v1/chat/completions`` (with ``store``/``metadata``; stored completions are
listed by ``GET /v1/chat/completions?metadata[k]=v``), ``POST /v1/files`` (multipart),
``GET /v1/files/{id}/content``, ``POST /v1/batches``, ``GET /v1/batches/{id}``,
``GET /v1/batches``, ``GET /v1/models``; control: ``POST /_control`` (JSON settings),
``GET /_log``.

Behaviour (all settable at start or through ``/_control``):

* ``latency`` seconds slept before answering a chat completion (threads: requests overlap);
* ``rpm`` / ``tpm``: a token-bucket rate limiter as OpenAI's (buckets start full, refill
  continuously, ``window`` seconds per "minute", 60 by default). A request is admitted when both
  buckets hold enough: 1 request and its prompt tokens (the count ``usage.prompt_tokens`` reports)
  plus its ``max_tokens``, reserved at admission; otherwise it is answered 429 with
  ``Retry-After`` / ``retry-after-ms``. Every answer carries ``x-ratelimit-limit-requests``,
  ``-limit-tokens``, ``-remaining-requests``, ``-remaining-tokens``, ``-reset-requests``,
  ``-reset-tokens`` (durations like ``6m0s``, ``1s``, ``20ms``) when a limit is set;
* ``faults``: a queue of injected failures consumed by successive chat requests, each
  ``{"status": 429 | 500 | 503 | 401 | 404 | "malformed" | "empty_choices" | "null_content" | "hang",
  "retry_after": s, "seconds": s (hang), "times": n}``; ``malformed`` (truncated JSON),
  ``empty_choices`` and ``null_content`` are HTTP 200 answers the server bills (logged with usage);
* ``models``: when set, the model ids that exist; any other is answered 404 ``model_not_found``;
* ``cached_tokens``: reported as ``usage.prompt_tokens_details.cached_tokens`` (at most the prompt);
* ``kill_after``: ``{"billed": n, "pid": p, "signal": s}`` sends signal ``s`` to process ``p`` right
  after the n-th billed completion (before it is answered): a deterministic point to kill a client;
* ``fail_marker``: any chat request whose text contains it fails with 500, always;
* ``batch_api``: False answers 404 on ``/v1/files`` and ``/v1/batches`` (a server without the Batch API);
* ``answer``: ``"caption"`` (one paragraph), ``"paragraphs"`` (one per image, blank lines
  between), ``"numbered"`` ("Image 1: ..." lines) or ``"broken"`` (paragraph count off by one)
  for multi-image requests; ``model_suffix`` is appended to the requested model in answers;
* ``batch_delay`` seconds before a batch completes.

Every chat completion the server *finishes* counts as billed, whether or not the client is
still there to read it (as with a real API). The request log (``server.log`` in process, JSON
lines in ``log_path`` and ``GET /_log`` across processes) has one entry per request with
``path``, ``status``, ``billed``, ``messages_sha`` (SHA-256 of the canonical messages JSON),
``model``, ``metadata`` and times.

Run as a separate process (so a test can SIGKILL the *client*):
``python tests/openai_server.py --port 0 --latency 0.2 --port-file P --log L``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import signal
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_PARA_WORDS = ("tree", "water", "crop", "grass", "developed area", "shrub", "bare land", "wetland")


def canonical_sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def _n_images(messages: list[dict]) -> int:
    n = 0
    for m in messages:
        if isinstance(m.get("content"), list):
            n += sum(1 for p in m["content"] if p.get("type") == "image_url")
    if "true-colour picture" in _text_of(messages):
        n //= 2  # label map + RGB picture per tile
    return n


def _text_of(messages: list[dict]) -> str:
    out = []
    for m in messages:
        c = m.get("content")
        if isinstance(c, str):
            out.append(c)
        elif isinstance(c, list):
            out.extend(p.get("text", "") for p in c if p.get("type") == "text")
    return "\n".join(out)


def prompt_tokens_of(messages: list[dict]) -> int:
    """The prompt tokens the fake API bills and counts toward its TPM limit."""
    return max(1, len(json.dumps(messages)) // 4)


def format_duration(seconds: float) -> str:
    """A duration as OpenAI writes it in ``x-ratelimit-reset-*``: ``20ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    m, s = divmod(seconds, 60)
    return f"{int(m)}m{s:.0f}s"


class Bucket:
    """OpenAI-style token bucket: capacity = the per-minute limit, continuous refill."""

    def __init__(self, limit: float, window: float) -> None:
        self.capacity = float(limit)
        self.rate = float(limit) / window
        self.level = float(limit)
        self.stamp = time.monotonic()

    def refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        return 0.0 if self.level >= amount else (amount - self.level) / self.rate

    def reset_s(self) -> float:
        return (self.capacity - self.level) / self.rate


class FakeOpenAI:
    """State and behaviour of the fake API (thread-safe)."""

    SETTINGS = {"latency", "answer", "model_suffix", "batch_delay", "faults", "fail_marker", "rpm", "tpm", "window",
                "models", "cached_tokens", "kill_after", "batch_api"}

    def __init__(self, *, latency: float = 0.0, log_path: str | None = None, answer: str = "paragraphs",
                 model_suffix: str = "-0001", batch_delay: float = 0.2, faults: list | None = None,
                 fail_marker: str | None = None, rpm: float | None = None, tpm: float | None = None,
                 window: float = 60.0, models: list | None = None, cached_tokens: int = 0,
                 kill_after: dict | None = None, batch_api: bool = True) -> None:
        self.lock = threading.Lock()
        self.batch_api = batch_api
        self.rpm, self.tpm, self.window = rpm, tpm, window
        self.models = models
        self.cached_tokens = cached_tokens
        self.kill_after = kill_after
        self.n_billed = 0
        self._buckets: tuple[Bucket | None, Bucket | None] | None = None
        self.latency = latency
        self.answer = answer
        self.model_suffix = model_suffix
        self.batch_delay = batch_delay
        self.faults: list[dict] = list(faults or [])
        self.fail_marker = fail_marker
        self.log: list[dict] = []
        self.log_path = log_path
        self._log_file = open(log_path, "a", buffering=1, encoding="utf-8") if log_path else None  # noqa: SIM115
        self.files: dict[str, dict] = {}
        self.batches: dict[str, dict] = {}
        self.stored: list[dict] = []

    # -- control and log ------------------------------------------------------------------------
    def configure(self, **kw: Any) -> None:
        with self.lock:
            for k, v in kw.items():
                if k not in self.SETTINGS:
                    raise ValueError(f"unknown setting {k!r}")
                setattr(self, k, list(v) if k == "faults" else v)
                if k in ("rpm", "tpm", "window"):
                    self._buckets = None

    # -- rate limits ----------------------------------------------------------------------------
    def admit(self, tokens: int) -> tuple[bool, float, dict]:
        """Admit one request of ``tokens`` (prompt + max_tokens)? Returns (admitted, retry_after_s, headers)."""
        with self.lock:
            if self.rpm is None and self.tpm is None:
                return True, 0.0, {}
            if self._buckets is None:
                self._buckets = (Bucket(self.rpm, self.window) if self.rpm else None,
                                 Bucket(self.tpm, self.window) if self.tpm else None)
            req, tok = self._buckets
            for b in (req, tok):
                if b is not None:
                    b.refill()
            wait = max(req.wait_for(1) if req else 0.0, tok.wait_for(tokens) if tok else 0.0)
            if wait <= 0:
                if req:
                    req.level -= 1
                if tok:
                    tok.level -= tokens
            headers = {}
            if req:
                headers.update({"x-ratelimit-limit-requests": str(int(req.capacity)),
                                "x-ratelimit-remaining-requests": str(max(0, int(req.level))),
                                "x-ratelimit-reset-requests": format_duration(req.reset_s())})
            if tok:
                headers.update({"x-ratelimit-limit-tokens": str(int(tok.capacity)),
                                "x-ratelimit-remaining-tokens": str(max(0, int(tok.level))),
                                "x-ratelimit-reset-tokens": format_duration(tok.reset_s())})
            if wait > 0:
                headers.update({"retry-after": str(max(1, math.ceil(wait))), "retry-after-ms": str(math.ceil(wait * 1000))})
                return False, wait, headers
            return True, 0.0, headers

    def billed(self) -> None:
        """Count a billed completion; fire ``kill_after`` at its n-th."""
        with self.lock:
            self.n_billed += 1
            k = self.kill_after
            fire = k is not None and self.n_billed == int(k.get("billed", 1))
        if fire:
            os.kill(int(k["pid"]), int(k.get("signal", signal.SIGKILL)))

    def record(self, entry: dict) -> None:
        entry["t_end"] = time.time()
        with self.lock:
            self.log.append(entry)
            if self._log_file:
                self._log_file.write(json.dumps(entry) + "\n")

    def _next_fault(self, text: str) -> dict | None:
        with self.lock:
            if self.fail_marker and self.fail_marker in text:
                return {"status": 500}
            if not self.faults:
                return None
            f = self.faults[0]
            f["times"] = int(f.get("times", 1)) - 1
            if f["times"] <= 0:
                self.faults.pop(0)
            return dict(f)

    # -- answers --------------------------------------------------------------------------------
    def caption_text(self, messages: list[dict], n_images: int) -> str:
        seed = canonical_sha(messages)[:8]

        def para(k: int) -> str:
            w = _PARA_WORDS[(int(seed, 16) + k) % len(_PARA_WORDS)]
            return (f"The scene {k + 1} shows {w} in the top left part, with patches of grass in the middle. "
                    f"Overall it is a rural landscape [{seed}/{k}].")

        if n_images <= 1:
            return para(0)
        if self.answer == "numbered":
            return "\n".join(f"Image {k + 1}: {para(k)}" for k in range(n_images))
        if self.answer == "broken":
            return "\n\n".join(para(k) for k in range(n_images - 1))
        return "\n\n".join(para(k) for k in range(n_images))

    def completion(self, body: dict) -> dict:
        messages = body.get("messages") or []
        text = self.caption_text(messages, _n_images(messages))
        prompt_tokens = prompt_tokens_of(messages)
        completion_tokens = max(1, len(text) // 4)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": f"{body.get('model', 'unknown')}{self.model_suffix}",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens,
                      "prompt_tokens_details": {"cached_tokens": min(int(self.cached_tokens), prompt_tokens)}},
            "metadata": body.get("metadata") or {},
        }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "OpenAIServer"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    # -- helpers --------------------------------------------------------------------------------
    def _send(self, status: int, payload: Any = None, *, raw: bytes | None = None, headers: dict | None = None,
              ctype: str = "application/json") -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _error(self, status: int, message: str, headers: dict | None = None) -> None:
        self._send(status, {"error": {"message": message, "type": "server_error", "code": status}}, headers=headers)

    # -- routes ---------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        api = self.server.api
        url = urlsplit(self.path)
        path = url.path
        if path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "cen"}]})
        elif path == "/_log":
            with api.lock:
                self._send(200, list(api.log))
        elif path == "/v1/chat/completions":
            query = dict(parse_qsl(url.query))
            meta = {k[len("metadata["):-1]: v for k, v in query.items() if k.startswith("metadata[")}
            with api.lock:
                found = [c for c in api.stored if all(c["metadata"].get(k) == v for k, v in meta.items())]
            api.record({"method": "GET", "path": path, "status": 200, "billed": False, "metadata": meta,
                        "t_start": time.time()})
            self._send(200, {"object": "list", "data": found, "has_more": False,
                             "first_id": found[0]["id"] if found else None, "last_id": found[-1]["id"] if found else None})
        elif m := re.fullmatch(r"/v1/files/([^/]+)/content", path):
            f = api.files.get(m.group(1))
            if f is None:
                self._error(404, f"no file {m.group(1)}")
            else:
                self._send(200, raw=f["content"], ctype="application/octet-stream")
        elif m := re.fullmatch(r"/v1/files/([^/]+)", path):
            f = api.files.get(m.group(1))
            self._send(200, f["meta"]) if f else self._error(404, "no such file")
        elif m := re.fullmatch(r"/v1/batches/([^/]+)", path):
            b = self._batch_state(m.group(1))
            self._send(200, b) if b else self._error(404, "no such batch")
        elif path == "/v1/batches":
            data = [self._batch_state(k) for k in list(api.batches)]
            self._send(200, {"object": "list", "data": data, "has_more": False,
                             "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None})
        else:
            self._error(404, f"unknown path {path}")

    def do_POST(self) -> None:  # noqa: N802
        api = self.server.api
        path = urlsplit(self.path).path
        raw = self._body()
        if path == "/_control":
            try:
                api.configure(**json.loads(raw or b"{}"))
            except ValueError as exc:
                return self._error(400, str(exc))
            return self._send(200, {"ok": True})
        if path == "/v1/chat/completions":
            return self._chat(raw)
        if path in ("/v1/files", "/v1/batches") and not api.batch_api:
            return self._error(404, f"unknown path {path}")
        if path == "/v1/files":
            return self._upload(raw)
        if path == "/v1/batches":
            body = json.loads(raw)
            fid = body.get("input_file_id")
            if fid not in api.files:
                return self._error(400, f"unknown input_file_id {fid}")
            bid = f"batch_{uuid.uuid4().hex[:16]}"
            api.batches[bid] = {"id": bid, "object": "batch", "endpoint": body.get("endpoint"),
                                "input_file_id": fid, "completion_window": body.get("completion_window", "24h"),
                                "status": "validating", "created_at": int(time.time()), "t0": time.time(),
                                "metadata": body.get("metadata") or {}, "output_file_id": None, "error_file_id": None}
            api.record({"method": "POST", "path": path, "status": 200, "billed": False, "t_start": time.time(),
                        "batch_id": bid})
            return self._send(200, self._batch_state(bid))
        self._error(404, f"unknown path {path}")

    def _chat(self, raw: bytes) -> None:
        api = self.server.api
        t0 = time.time()
        entry: dict[str, Any] = {"method": "POST", "path": "/v1/chat/completions", "t_start": t0, "billed": False}
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            entry["status"] = 400
            api.record(entry)
            return self._error(400, "body is not JSON")
        messages = body.get("messages") or []
        model = body.get("model")
        entry.update(model=model, messages_sha=canonical_sha(messages), metadata=body.get("metadata") or {})
        if api.models is not None and model not in api.models:
            entry["status"] = 404
            api.record(entry)
            return self._send(404, {"error": {"message": f"The model `{model}` does not exist or you do not have "
                                              "access to it.", "type": "invalid_request_error", "param": None,
                                              "code": "model_not_found"}})
        limit_tokens = prompt_tokens_of(messages) + int(body.get("max_tokens") or body.get("max_completion_tokens") or 0)
        admitted, wait, rl_headers = api.admit(limit_tokens)
        entry["rl_tokens"] = limit_tokens
        if not admitted:
            entry["status"] = 429
            api.record(entry)
            return self._send(429, {"error": {"message": "Rate limit reached", "type": "requests",
                                              "code": "rate_limit_exceeded"}}, headers=rl_headers)
        entry["t_admit"] = time.time()
        fault = api._next_fault(_text_of(messages))
        if api.latency:
            time.sleep(api.latency)
        if fault is not None:
            status = fault.get("status")
            entry["status"] = status
            if status in ("malformed", "empty_choices", "null_content"):  # HTTP 200 answers that are billed
                resp = api.completion(body)
                entry.update(billed=True, usage=resp["usage"], completion_id=resp["id"])
                api.billed()
                api.record(entry)
                if status == "malformed":
                    return self._send(200, raw=b'{"id": "chatcmpl-x", "choices": [ {"message": ', headers=rl_headers)
                if status == "empty_choices":
                    resp["choices"] = []
                else:
                    resp["choices"][0]["message"]["content"] = None
                return self._send(200, resp, headers=rl_headers)
            api.record(entry)
            if status == "hang":
                time.sleep(float(fault.get("seconds", 5)))
                return self._error(504, "gateway timeout")
            headers = dict(rl_headers)
            if "retry_after" in fault:
                headers["Retry-After"] = str(fault["retry_after"])
            return self._error(int(status), f"injected {status}", headers=headers)
        resp = api.completion(body)
        entry.update(status=200, billed=True, completion_id=resp["id"], usage=resp["usage"])
        if body.get("store"):
            with api.lock:
                api.stored.append(resp)
        api.record(entry)
        api.billed()
        self._send(200, resp, headers=rl_headers)

    def _upload(self, raw: bytes) -> None:
        api = self.server.api
        ctype = self.headers.get("Content-Type", "")
        m = re.search(r"boundary=([^;]+)", ctype)
        if not m:
            return self._error(400, "expected multipart/form-data")
        boundary = m.group(1).strip('"').encode()
        fields: dict[str, bytes] = {}
        filename = "upload.jsonl"
        for part in raw.split(b"--" + boundary):
            if b"\r\n\r\n" not in part:
                continue
            head, _, data = part.partition(b"\r\n\r\n")
            name = re.search(rb'name="([^"]+)"', head)
            fn = re.search(rb'filename="([^"]*)"', head)
            if name:
                fields[name.group(1).decode()] = data[:-2] if data.endswith(b"\r\n") else data
            if fn:
                filename = fn.group(1).decode()
        if "file" not in fields:
            return self._error(400, "multipart upload without a 'file' field")
        fid = self._store_file(fields["file"], fields.get("purpose", b"batch").decode(), filename)
        api.record({"method": "POST", "path": "/v1/files", "status": 200, "billed": False, "t_start": time.time(),
                    "file_id": fid})
        self._send(200, api.files[fid]["meta"])

    def _store_file(self, content: bytes, purpose: str, filename: str) -> str:
        fid = f"file-{uuid.uuid4().hex[:16]}"
        self.server.api.files[fid] = {"content": content, "meta": {
            "id": fid, "object": "file", "bytes": len(content), "created_at": int(time.time()),
            "filename": filename, "purpose": purpose, "status": "processed"}}
        return fid

    def _batch_state(self, bid: str) -> dict | None:
        """Advance a batch (validating -> in_progress -> completed after ``batch_delay``)."""
        api = self.server.api
        with api.lock:
            b = api.batches.get(bid)
            if b is None:
                return None
            age = time.time() - b["t0"]
            if b["status"] in ("validating", "in_progress") and age >= api.batch_delay:
                out_lines, err_lines = [], []
                for line in api.files[b["input_file_id"]]["content"].decode().splitlines():
                    if not line.strip():
                        continue
                    req = json.loads(line)
                    body = req["body"]
                    entry = {"method": "BATCH", "path": "/v1/chat/completions", "t_start": time.time(),
                             "messages_sha": canonical_sha(body.get("messages") or []), "model": body.get("model"),
                             "custom_id": req["custom_id"], "batch_id": bid}
                    if api.fail_marker and api.fail_marker in _text_of(body.get("messages") or []):
                        entry.update(status=500, billed=False)
                        err_lines.append({"id": f"resp_{uuid.uuid4().hex[:8]}", "custom_id": req["custom_id"],
                                          "response": {"status_code": 500, "body": {"error": {"message": "injected"}}},
                                          "error": None})
                    else:
                        resp = api.completion(body)
                        entry.update(status=200, billed=True, usage=resp["usage"])
                        out_lines.append({"id": f"resp_{uuid.uuid4().hex[:8]}", "custom_id": req["custom_id"],
                                          "response": {"status_code": 200, "request_id": uuid.uuid4().hex,
                                                       "body": resp}, "error": None})
                    entry["t_end"] = time.time()
                    api.log.append(entry)
                    if api._log_file:
                        api._log_file.write(json.dumps(entry) + "\n")
                b["output_file_id"] = self._store_file(
                    "".join(json.dumps(x) + "\n" for x in out_lines).encode(), "batch_output", "out.jsonl")
                if err_lines:
                    b["error_file_id"] = self._store_file(
                        "".join(json.dumps(x) + "\n" for x in err_lines).encode(), "batch_output", "err.jsonl")
                b["status"] = "completed"
                b["completed_at"] = int(time.time())
                b["request_counts"] = {"total": len(out_lines) + len(err_lines), "completed": len(out_lines),
                                       "failed": len(err_lines)}
            elif b["status"] == "validating" and age >= api.batch_delay / 2:
                b["status"] = "in_progress"
            return {k: v for k, v in b.items() if k != "t0"}


class OpenAIServer(ThreadingHTTPServer):
    """The fake API on 127.0.0.1; use as a context manager (``with OpenAIServer() as s: s.base_url``)."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, port: int = 0, **settings: Any) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.api = FakeOpenAI(**settings)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    @property
    def log(self) -> list[dict]:
        return self.api.log

    def configure(self, **kw: Any) -> None:
        self.api.configure(**kw)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return  # a client that went away (e.g. killed by a test)
        super().handle_error(request, client_address)

    def __enter__(self) -> "OpenAIServer":
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
        self.server_close()


def billed_calls(log: list[dict]) -> list[dict]:
    """Log entries of billed chat completions (direct or in a batch)."""
    return [e for e in log if e.get("billed")]


def duplicate_paid_calls(log: list[dict]) -> int:
    """Billed calls beyond the first for the same (model, messages)."""
    seen: dict[tuple, int] = {}
    for e in billed_calls(log):
        key = (e.get("model"), e.get("messages_sha"))
        seen[key] = seen.get(key, 0) + 1
    return sum(n - 1 for n in seen.values())


def read_log(path: str | os.PathLike) -> list[dict]:
    """The JSON-lines request log written by a server started with ``log_path``."""
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--log", help="JSON-lines request log")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--answer", default="paragraphs")
    ap.add_argument("--batch-delay", type=float, default=0.2)
    ap.add_argument("--rpm", type=float, help="requests-per-minute limit (token bucket)")
    ap.add_argument("--tpm", type=float, help="tokens-per-minute limit (prompt + max_tokens at admission)")
    ap.add_argument("--window", type=float, default=60.0, help="seconds per rate-limit minute [60]")
    args = ap.parse_args()
    server = OpenAIServer(args.port, latency=args.latency, log_path=args.log, answer=args.answer,
                          batch_delay=args.batch_delay, rpm=args.rpm, tpm=args.tpm, window=args.window)
    if args.port_file:
        tmp = f"{args.port_file}.tmp"
        Path(tmp).write_text(str(server.server_address[1]))
        os.replace(tmp, args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
