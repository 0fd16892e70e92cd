"""Content-addressed SQLite cache of model calls: re-runs cost nothing, killed runs resume.

One row per *cache key* (:func:`cache_key`: SHA-256 of model, generation parameters, the hash of
the exact messages and the image hashes). Life of a row:

``in_flight`` (written and committed *before* the request leaves) -> ``done`` (answer stored) or
``failed`` (final error after the last retry; retried by the next run).

A run killed with SIGKILL leaves ``in_flight`` rows: the server may or may not have received
(and billed) them -- at most ``concurrency`` of them. On resume they are sent again, unless the
run opted into in-flight recovery (``recover_in_flight``: requests sent with ``store=True`` and
``metadata={"cen_cache_key": key}``, which keeps every prompt and answer on the provider); then
each such key is first looked up among the server's stored completions
(:mod:`cen.generate.recover`) and a found answer is collected without a new call. ``done`` rows are never sent again. Batch API jobs are recorded in the
``batches`` table before polling, so a resumed run polls the same job instead of paying again.

SQLite runs in WAL mode with ``synchronous=NORMAL``: a commit survives the death of the process
(not a power cut), at a fraction of a millisecond per commit.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    cache_key TEXT PRIMARY KEY,
    status TEXT NOT NULL,               -- in_flight | done | failed
    model_requested TEXT NOT NULL,
    model_returned TEXT,
    request_id TEXT,
    text TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost_usd REAL,
    via TEXT,                           -- direct | batch | recovered
    attempts INTEGER DEFAULT 0,
    error TEXT,
    sent_at REAL,
    finished_at REAL,
    batch_id TEXT
);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    input_file_id TEXT,
    keys_json TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL,
    collected_at REAL
);
CREATE TABLE IF NOT EXISTS ledger (               -- before the spend table; kept for old caches
    run_id TEXT NOT NULL,
    model TEXT NOT NULL,
    calls INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    updated_at REAL,
    PRIMARY KEY (run_id, model)
);
CREATE TABLE IF NOT EXISTS spend (
    run_name TEXT NOT NULL,
    invocation TEXT NOT NULL,
    model TEXT NOT NULL,
    calls INTEGER NOT NULL,
    billed_unusable INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    started_at REAL,
    updated_at REAL,
    PRIMARY KEY (run_name, invocation, model)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""

SPEND_COLUMNS = ("run_name", "invocation", "model", "calls", "billed_unusable", "input_tokens", "cached_tokens",
                 "output_tokens", "cost_usd", "started_at", "updated_at")
"""Columns of the ``spend`` table (one row per run name x invocation x model)."""


def cache_key(model: str, params: Mapping[str, Any], messages_hash: str, image_hashes: Sequence[str] = ()) -> str:
    """SHA-256 hex identifying one paid call: model, generation parameters, messages, images."""
    blob = json.dumps(
        {"model": model, "params": dict(params), "messages": messages_hash, "images": list(image_hashes)},
        sort_keys=True, separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class CallRecord:
    """One row of the ``calls`` table."""

    cache_key: str
    status: str
    model_requested: str
    model_returned: str | None = None
    request_id: str | None = None
    text: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    via: str | None = None
    attempts: int = 0
    error: str | None = None
    sent_at: float | None = None
    finished_at: float | None = None
    batch_id: str | None = None


_FIELDS = tuple(CallRecord.__dataclass_fields__)


class GenerationCache:
    """The SQLite cache file (one connection, guarded by a lock; safe from asyncio and threads)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        except sqlite3.DatabaseError as exc:
            raise RuntimeError(f"{self.path}: not a usable generation cache ({exc})") from exc
        version = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise RuntimeError(f"{self.path}: cache schema version {version}, this code reads {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "GenerationCache":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- calls ----------------------------------------------------------------------------------
    def get(self, key: str) -> CallRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_FIELDS)} FROM calls WHERE cache_key=?", (key,)).fetchone()
        return CallRecord(*row) if row else None

    def get_many(self, keys: Iterable[str]) -> dict[str, CallRecord]:
        keys = list(keys)
        out: dict[str, CallRecord] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                q = f"SELECT {', '.join(_FIELDS)} FROM calls WHERE cache_key IN ({','.join('?' * len(chunk))})"
                for row in self._db.execute(q, chunk):
                    out[row[0]] = CallRecord(*row)
        return out

    def mark_in_flight(self, key: str, model: str, request_id: str, attempt: int) -> None:
        """Record (and commit) that a request is about to be sent."""
        with self._lock:
            self._db.execute(
                "INSERT INTO calls (cache_key, status, model_requested, request_id, attempts, sent_at) "
                "VALUES (?, 'in_flight', ?, ?, ?, ?) ON CONFLICT(cache_key) DO UPDATE SET "
                "status='in_flight', attempts=excluded.attempts, sent_at=excluded.sent_at, error=NULL",
                (key, model, request_id, attempt, time.time()),
            )

    def complete(self, key: str, *, model_requested: str, model_returned: str | None, text: str,
                 input_tokens: int, output_tokens: int, cost_usd: float, via: str = "direct",
                 request_id: str | None = None, attempts: int | None = None, batch_id: str | None = None) -> None:
        """Store a finished answer (status ``done``)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO calls (cache_key, status, model_requested, model_returned, request_id, text, "
                "input_tokens, output_tokens, cost_usd, via, attempts, finished_at, batch_id) "
                "VALUES (?, 'done', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(cache_key) DO UPDATE SET "
                "status='done', model_returned=excluded.model_returned, text=excluded.text, "
                "input_tokens=excluded.input_tokens, output_tokens=excluded.output_tokens, "
                "cost_usd=excluded.cost_usd, via=excluded.via, finished_at=excluded.finished_at, error=NULL, "
                "attempts=COALESCE(excluded.attempts, calls.attempts), batch_id=COALESCE(excluded.batch_id, calls.batch_id)",
                (key, model_requested, model_returned, request_id, text, input_tokens, output_tokens, cost_usd, via,
                 attempts, time.time(), batch_id),
            )

    def fail(self, key: str, model: str, error: str, attempts: int, request_id: str | None = None) -> None:
        """Record a final failure (status ``failed``; a later run tries again)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO calls (cache_key, status, model_requested, request_id, error, attempts, finished_at) "
                "VALUES (?, 'failed', ?, ?, ?, ?, ?) ON CONFLICT(cache_key) DO UPDATE SET status='failed', "
                "error=excluded.error, attempts=excluded.attempts, finished_at=excluded.finished_at",
                (key, model, request_id, error, attempts, time.time()),
            )

    def release(self, key: str) -> None:
        """Forget an ``in_flight`` mark of a request that was never sent (e.g. budget stop)."""
        with self._lock:
            self._db.execute("DELETE FROM calls WHERE cache_key=? AND status='in_flight'", (key,))

    def in_flight(self) -> list[CallRecord]:
        """Rows left ``in_flight`` by a run that died."""
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(_FIELDS)} FROM calls WHERE status='in_flight'").fetchall()
        return [CallRecord(*r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Rows per status."""
        with self._lock:
            return dict(self._db.execute("SELECT status, COUNT(*) FROM calls GROUP BY status").fetchall())

    # -- batches --------------------------------------------------------------------------------
    def add_batch(self, batch_id: str, input_file_id: str, keys: Sequence[str]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, 'submitted', ?, NULL)",
                (batch_id, input_file_id, json.dumps(list(keys)), time.time()),
            )

    def pending_batches(self) -> list[tuple[str, list[str]]]:
        """``(batch_id, keys)`` of submitted batches not yet collected."""
        with self._lock:
            rows = self._db.execute("SELECT batch_id, keys_json FROM batches WHERE status='submitted'").fetchall()
        return [(b, json.loads(k)) for b, k in rows]

    def finish_batch(self, batch_id: str, status: str) -> None:
        with self._lock:
            self._db.execute("UPDATE batches SET status=?, collected_at=? WHERE batch_id=?", (status, time.time(), batch_id))

    # -- ledger ---------------------------------------------------------------------------------
    def add_to_ledger(self, run_id: str, model: str, input_tokens: int, output_tokens: int, cost: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO ledger VALUES (?, ?, 1, ?, ?, ?, ?) ON CONFLICT(run_id, model) DO UPDATE SET "
                "calls=calls+1, input_tokens=input_tokens+excluded.input_tokens, "
                "output_tokens=output_tokens+excluded.output_tokens, cost_usd=cost_usd+excluded.cost_usd, "
                "updated_at=excluded.updated_at",
                (run_id, model, input_tokens, output_tokens, cost, time.time()),
            )

    def add_spend(self, run_name: str, invocation: str, model: str, *, input_tokens: int, output_tokens: int,
                  cached_tokens: int = 0, cost: float, answered: bool = True, started_at: float | None = None) -> None:
        """Add one billed answer (``answered=False``: billed but unusable) to the run's ledger (committed at once)."""
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO spend VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_name, invocation, model) "
                "DO UPDATE SET calls=calls+excluded.calls, billed_unusable=billed_unusable+excluded.billed_unusable, "
                "input_tokens=input_tokens+excluded.input_tokens, cached_tokens=cached_tokens+excluded.cached_tokens, "
                "output_tokens=output_tokens+excluded.output_tokens, cost_usd=cost_usd+excluded.cost_usd, "
                "updated_at=excluded.updated_at",
                (run_name, invocation, model, int(answered), int(not answered), int(input_tokens), int(cached_tokens),
                 int(output_tokens), float(cost), started_at or now, now),
            )

    def run_spent(self, run_name: str) -> float:
        """USD recorded for ``run_name`` over all its invocations."""
        with self._lock:
            row = self._db.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM spend WHERE run_name=?", (run_name,)).fetchone()
        return float(row[0])

    def spend_rows(self, run_name: str | None = None) -> list[tuple]:
        """Rows of the ``spend`` table (:data:`SPEND_COLUMNS`), oldest first; one run's with ``run_name``."""
        q = f"SELECT {', '.join(SPEND_COLUMNS)} FROM spend"
        args: tuple = ()
        if run_name is not None:
            q, args = q + " WHERE run_name=?", (run_name,)
        with self._lock:
            return self._db.execute(q + " ORDER BY started_at, run_name, model", args).fetchall()

    def ledger_rows(self) -> list[tuple]:
        """``(run_id, model, calls, input_tokens, output_tokens, cost_usd)`` rows."""
        with self._lock:
            return self._db.execute(
                "SELECT run_id, model, calls, input_tokens, output_tokens, cost_usd FROM ledger ORDER BY updated_at"
            ).fetchall()
