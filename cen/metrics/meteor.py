"""METEOR 1.5: a pool of ``-stdio`` processes, per-image statistics in parallel, corpus scores
from summed statistics."""

from __future__ import annotations

import atexit
import os
import queue
import subprocess
import tempfile
import threading
from typing import Mapping, Sequence

import numpy as np

from cen.metrics.java import MetricsError, _package_dir
from cen.metrics.tokens import _flatten


class MeteorProcess:
    """One ``meteor-1.5.jar -stdio`` process with a reader thread, so no read can hang forever.

    Same command as pycocoevalcap's plus ``-XX:+UseSerialGC`` (same numbers, checked; ~0.6 GB
    instead of ~1.5 GB resident per process, which matters when several run at once).

    ``request(lines, n_out)`` writes the lines and returns ``n_out`` output lines; if no output
    line arrives for ``timeout`` seconds the process is killed and :class:`MetricsError` raised.
    """

    def __init__(self, java: str, timeout: float = 120.0) -> None:
        jar_dir = _package_dir() / "meteor"
        self.java = java
        self.timeout = timeout
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [java, "-XX:+UseSerialGC", "-jar", "-Xmx2G", str(jar_dir / "meteor-1.5.jar"), "-", "-", "-stdio", "-l", "en", "-norm"],
            cwd=str(jar_dir), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
        )
        self._out: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._out.put(line)
        self._out.put(None)

    def _write(self, lines: Sequence[str]) -> None:
        try:
            assert self.proc.stdin is not None
            for start in range(0, len(lines), 256):
                self.proc.stdin.write("".join(l + "\n" for l in lines[start:start + 256]).encode())
                self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the reader sees EOF and reports the failure

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-400:].strip()

    def request(self, lines: Sequence[str], n_out: int, what: str = "METEOR") -> list[str]:
        writer = threading.Thread(target=self._write, args=(list(lines),), daemon=True)
        writer.start()
        out = []
        for _ in range(n_out):
            try:
                line = self._out.get(timeout=self.timeout)
            except queue.Empty:
                self.close()
                raise MetricsError(
                    f"{what}: no answer from the METEOR process for {self.timeout:.0f} s after {len(out)} of "
                    f"{n_out} lines; killed it (raise the timeout for very long captions)"
                ) from None
            if line is None:  # its output closed: it exited, or will not answer again
                try:
                    self.proc.wait(timeout=self.timeout)
                    how = f"exited (code {self.proc.returncode})"
                except subprocess.TimeoutExpired:
                    how = "closed its output but kept running (killed it)"
                tail = self._stderr_tail()
                self.close()
                raise MetricsError(f"{what}: the METEOR process {how} after {len(out)} of {n_out} lines: {tail}")
            out.append(line.decode().strip())
        writer.join()
        return out

    def close(self) -> None:
        if self._stderr.closed:
            return
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            except OSError:
                pass
            self.proc.kill()
        self.proc.wait()
        self._stderr.close()


_POOL: list[MeteorProcess] = []
_POOL_LOCK = threading.Lock()
MAX_IDLE_METEOR = 4
"""At most this many idle METEOR processes are kept for reuse (each ~0.6 GB resident)."""


def _acquire_meteor(java: str, timeout: float) -> MeteorProcess:
    """An idle METEOR process of this ``java`` from the pool (its ~7 s start-up already paid), or a new one."""
    with _POOL_LOCK:
        for i, proc in enumerate(_POOL):
            if proc.java == java and proc.proc.poll() is None:
                _POOL.pop(i)
                proc.timeout = timeout
                return proc
    return MeteorProcess(java, timeout)


def _release_meteor(proc: MeteorProcess, ok: bool) -> None:
    """Back to the pool after a complete, successful exchange; closed otherwise."""
    with _POOL_LOCK:
        if ok and proc.proc.poll() is None and len(_POOL) < MAX_IDLE_METEOR:
            _POOL.append(proc)
            return
    proc.close()


def close_meteor_pool() -> None:
    """Stop the idle METEOR processes kept for reuse (also done at interpreter exit)."""
    with _POOL_LOCK:
        idle = list(_POOL)
        _POOL.clear()
    for proc in idle:
        proc.close()


atexit.register(close_meteor_pool)


def meteor_sanitize(text: str) -> str:
    """What METEOR's line protocol needs of a caption, applied to references and candidates alike:
    no line breaks, no ``|||`` field separator (removed, as pycocoevalcap does for candidates)."""
    return _flatten(text).replace("|||", "").replace("  ", " ")


def meteor_score_lines(gts: Mapping[str, list[str]], res: Mapping[str, list[str]], ids: Sequence[str]) -> list[str]:
    """The ``SCORE ||| ref ... ||| candidate`` line of each image."""
    return [
        " ||| ".join(("SCORE", " ||| ".join(meteor_sanitize(r) for r in gts[k]), meteor_sanitize(res[k][0])))
        for k in ids
    ]


def meteor(
    gts: Mapping[str, list[str]], res: Mapping[str, list[str]], ids: Sequence[str], *,
    java: str, processes: int = 2, timeout: float = 120.0,
) -> tuple[float, np.ndarray, list[str]]:
    """METEOR corpus score, per-image scores and per-image statistics lines.

    The ``SCORE`` lines are split over ``processes`` METEOR processes running at once; the
    statistics go back, in image order, in one ``EVAL`` line to the first process.
    """
    lines = meteor_score_lines(gts, res, ids)
    processes = max(1, min(processes, len(lines)))
    bounds = np.linspace(0, len(lines), processes + 1).astype(int)
    procs = [_acquire_meteor(java, timeout) for _ in range(processes)]
    ok = False
    results: list[list[str] | None] = [None] * processes
    errors: list[BaseException] = []

    def run(j: int) -> None:
        try:
            chunk = lines[bounds[j]:bounds[j + 1]]
            results[j] = procs[j].request(chunk, len(chunk), "METEOR statistics")
        except BaseException as exc:  # reported below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(j,), daemon=True) for j in range(1, processes)]
    for t in threads:
        t.start()
    try:
        run(0)
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        stats = [s for chunk in results for s in chunk]  # type: ignore[union-attr]
        answer = procs[0].request(["EVAL ||| " + " ||| ".join(stats)], len(stats) + 1, "METEOR EVAL")
        ok = True
    finally:
        for p in procs:
            _release_meteor(p, ok)
    return float(answer[-1]), np.array([float(x) for x in answer[:-1]]), stats


METEOR_LINES_PER_PROCESS = 1500
"""Default: one more METEOR process per this many images. A process costs ~7 s of CPU to start
(it loads the paraphrase table), which splitting only repays when each gets enough lines."""


def default_meteor_processes(n_images: int) -> int:
    """METEOR processes for ``n_images``: one per :data:`METEOR_LINES_PER_PROCESS`, at most the CPU count (max 4)."""
    return max(1, min(os.cpu_count() or 1, 4, -(-n_images // METEOR_LINES_PER_PROCESS)))


def meteor_from_statistics(stat_rows: np.ndarray, *, java: str, timeout: float = 120.0) -> np.ndarray:
    """METEOR scores of already-summed statistics rows, shape (R, n_stats) -> (R,), one JVM."""
    proc = _acquire_meteor(java, timeout)
    ok = False
    try:
        lines = ["EVAL ||| " + " ".join(repr(float(x)) for x in row) for row in stat_rows]
        answer = proc.request(lines, 2 * len(lines), "METEOR bootstrap EVAL")
        ok = True
    finally:
        _release_meteor(proc, ok)
    return np.array([float(x) for x in answer[1::2]])
