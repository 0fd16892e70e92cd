"""The one writer every export format goes through: files, shards, resume, manifest.

* **Relative paths only**: every file is named by its path relative to the export folder, and
  every path written *inside* a file is relative too, so the folder can be moved or zipped.
* **Atomic and umask-respecting**: files are written through :mod:`cen.tables`
  (temporary name, then rename), so a killed run leaves no half file under the final name.
* **Resumable, nothing unchanged rewritten**: :meth:`ExportWriter.put_bytes` keeps a file that
  already holds the same bytes; :meth:`ExportWriter.shard` keeps a shard whose *inputs
  fingerprint* (ids, metadata, and size and modification time of every member file, see
  :class:`Fingerprint` and :func:`source_stamp`) matches
  the manifest entry written when it was made and whose file is as it was left (same size and
  modification time as recorded, else the same sha256). The manifest is saved after each
  shard, so a run killed midway resumes at the first unfinished shard.
* **Stale files removed**: files the previous export of this folder listed in its manifest and
  this one no longer writes (e.g. ``-of-00003`` shards after a smaller export) are deleted, so
  consumers that glob a folder never see leftovers. A folder that is not empty and holds no
  ``cen`` manifest is refused (nothing of the user's is overwritten).
* **manifest.json**: format, options, ``cen`` version, counts, skipped inputs per reason, and
  ``files``: ``{relative path: {sha256, bytes}}`` for every file of the export but itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from cen.tables import atomic_path, current_umask, file_digest, write_bytes

MANIFEST = "manifest.json"
"""Name of the manifest in every export folder."""
MANIFEST_VERSION = "cen-export-1"
LOCK = ".cen-export.lock"


class ExportError(ValueError):
    """An export cannot be made or read; the message names the folder or file and the problem."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    return file_digest(path, "sha256")


def cen_version() -> str:
    import cen

    return cen.__version__


def read_manifest(out: str | Path) -> dict[str, Any] | None:
    """The manifest of an export folder, or ``None`` when there is none."""
    path = Path(out) / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path}: not valid JSON ({exc.msg}); remove it or export into a new folder") from None
    if not isinstance(data, dict) or data.get("manifest_version") != MANIFEST_VERSION:
        raise ExportError(f"{path}: not a cen export manifest")
    return data


def source_stamp(path: str | Path) -> str:
    """``size:mtime_ns`` of a source file: what a shard's fingerprint records of each member file
    (as make and rsync do: a file rewritten gets a new time; reading and hashing every source
    again would make a resume cost as much as the first run)."""
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}"


class SourceFiles:
    """The source files of one export: each file's stamp (known stamps first, then
    :func:`source_stamp`, each computed once) and its bytes."""

    def __init__(self, known: dict[str, str] | None = None) -> None:
        self._stamps: dict[str, str] = dict(known or {})

    def stamp(self, path: str) -> str:
        if path not in self._stamps:
            self._stamps[path] = source_stamp(path)
        return self._stamps[path]

    @staticmethod
    def read(path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()


class Fingerprint:
    """What a shard is made of: an order-sensitive sha256 over each member's id, metadata JSON and
    file stamps. Equal fingerprints mean the shard's content would be the same."""

    def __init__(self, salt: str = "") -> None:
        self._h = hashlib.sha256(salt.encode())

    def add(self, *parts: str | bytes) -> None:
        for p in parts:
            b = p if isinstance(p, bytes) else str(p).encode()
            self._h.update(len(b).to_bytes(8, "big"))
            self._h.update(b)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


class ExportWriter:
    """Writes one export folder; use as a context manager (a lock file keeps two exports out of
    one folder at the same time). Call :meth:`finish` with the counts at the end."""

    def __init__(self, out: str | Path, fmt: str, options: Mapping[str, Any] | None = None) -> None:
        self.out = Path(out)
        self.format = fmt
        self.options = dict(options or {})
        self.files: dict[str, dict[str, Any]] = {}
        self.written: list[str] = []
        self.kept: list[str] = []
        self.removed: list[str] = []
        self._lock_fd: int | None = None
        if self.out.exists() and not self.out.is_dir():
            raise ExportError(f"{self.out}: exists and is not a folder")
        previous = read_manifest(self.out)
        if previous is None and self.out.exists():
            others = [p.name for p in self.out.iterdir() if p.name not in (LOCK,)]
            if others:
                raise ExportError(f"{self.out}: folder is not empty and holds no {MANIFEST} (not a cen export); "
                                  f"export into an empty or new folder (found {', '.join(sorted(others)[:3])})")
        if previous is not None and previous.get("format") != fmt:
            raise ExportError(f"{self.out}: holds a {previous.get('format')!r} export; export {fmt!r} into another folder")
        self.previous_files: dict[str, dict[str, Any]] = dict((previous or {}).get("files", {}))
        self._state = dict(self.previous_files)

    # --- locking -------------------------------------------------------------------------
    def __enter__(self) -> "ExportWriter":
        import fcntl

        self.out.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.out / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ExportError(f"{self.out}: another export is writing into this folder") from None
        self._lock_fd = fd
        if read_manifest(self.out) is None:  # a run killed before its first shard still leaves a manifest
            self._save({"complete": False, "files": {}})
        return self

    def __exit__(self, *exc) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
            with contextlib.suppress(OSError):
                (self.out / LOCK).unlink()

    # --- files ---------------------------------------------------------------------------
    def path(self, rel: str) -> Path:
        """The absolute path of ``rel`` (a POSIX path inside the export; ``..`` refused)."""
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise ExportError(f"{rel!r}: export paths are relative and stay inside the folder")
        return self.out / rel

    def _record(self, rel: str, sha: str, size: int, **extra: Any) -> None:
        entry = {"sha256": sha, "bytes": int(size), **extra}
        self.files[rel] = entry
        self._state[rel] = entry

    def put_bytes(self, rel: str, data: bytes) -> bool:
        """Write ``data`` to ``rel`` unless the file already holds exactly these bytes; returns
        whether it was written."""
        target = self.path(rel)
        sha = sha256_bytes(data)
        if rel in self.files:
            if self.files[rel]["sha256"] != sha:
                raise ExportError(f"{target}: two different contents for one file in one export")
            return False
        if target.exists() and target.stat().st_size == len(data) and sha256_file(target) == sha:
            self.kept.append(rel)
            self._record(rel, sha, len(data))
            return False
        write_bytes(target, data)
        self.written.append(rel)
        self._record(rel, sha, len(data))
        return True

    def put_file(self, rel: str, source: str | Path) -> bool:
        """Copy a file byte for byte (see :meth:`put_bytes`); a path already written in this
        export (a tile's image shared by its captions) is not read again."""
        if rel in self.files:
            return False
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise ExportError(f"{source}: cannot read ({exc.strerror or exc})") from None
        return self.put_bytes(rel, data)

    def put_json(self, rel: str, obj: Any, *, indent: int | None = 1) -> bool:
        """Write ``obj`` as UTF-8 JSON (keys in insertion order, a final newline)."""
        text = json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False)
        return self.put_bytes(rel, (text + "\n").encode("utf-8"))

    def put_text(self, rel: str, text: str) -> bool:
        return self.put_bytes(rel, text.encode("utf-8"))

    def put_stream(self, rel: str, chunks: Iterable[bytes]) -> bool:
        """Write a file from byte chunks (a large JSON list, streamed) unless the file already
        holds the same bytes; returns whether it was written."""
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        h, size = hashlib.sha256(), 0
        fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
            sha = h.hexdigest()
            if target.exists() and target.stat().st_size == size and sha256_file(target) == sha:
                self.kept.append(rel)
                self._record(rel, sha, size)
                return False
            os.chmod(tmp, 0o666 & ~current_umask())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        self.written.append(rel)
        self._record(rel, sha, size)
        return True

    def shard_is_current(self, rel: str, fingerprint: str) -> bool:
        """Whether ``rel`` exists as the previous run left it for the same inputs."""
        entry = self.previous_files.get(rel)
        target = self.path(rel)
        if not entry or entry.get("inputs") != fingerprint or not target.exists():
            return False
        st = target.stat()
        if st.st_size != entry.get("bytes"):
            return False
        if entry.get("mtime_ns") == st.st_mtime_ns:
            return True  # untouched since this export wrote it (size and time as recorded)
        return sha256_file(target) == entry.get("sha256")

    def shard(self, rel: str, fingerprint: Callable[[], str], write: Callable[[Path], None]) -> bool:
        """Keep shard ``rel`` when it is current (:meth:`shard_is_current` for ``fingerprint()``),
        else write it with ``write(tmp_path)`` atomically. ``fingerprint`` is called before
        writing only when the previous export has this shard, and after writing otherwise (so a
        writer that hashes its members while writing reads each file once). The manifest is
        saved after each shard. Returns whether the shard was written."""
        target = self.path(rel)
        if rel in self.previous_files and target.exists():
            fp = fingerprint()
            if self.shard_is_current(rel, fp):
                entry = self.previous_files[rel]
                self.kept.append(rel)
                self._record(rel, entry["sha256"], entry["bytes"], inputs=fp, mtime_ns=target.stat().st_mtime_ns)
                return False
        with atomic_path(target) as tmp:
            write(tmp)
            sha, size = sha256_file(tmp), tmp.stat().st_size
        self.written.append(rel)
        self._record(rel, sha, size, inputs=fingerprint(), mtime_ns=target.stat().st_mtime_ns)
        self._save({"complete": False, "files": dict(sorted(self._state.items()))})
        return True

    # --- manifest ------------------------------------------------------------------------
    def _save(self, body: Mapping[str, Any]) -> None:
        manifest = {"manifest_version": MANIFEST_VERSION, "format": self.format, "cen_version": cen_version(),
                    "options": self.options, **body}
        write_bytes(self.out / MANIFEST, (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode())

    def finish(self, counts: Mapping[str, Any], skipped: Mapping[str, int] | None = None,
               extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Remove the previous export's files this one no longer has, write ``manifest.json``
        (``complete: true``) and return it."""
        for rel in sorted(set(self.previous_files) - set(self.files)):
            target = self.path(rel)
            if target.exists():
                target.unlink()
                self.removed.append(rel)
                parent = target.parent
                while parent != self.out and parent.is_dir() and not any(parent.iterdir()):
                    parent.rmdir()
                    parent = parent.parent
        body = {"complete": True, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "counts": dict(counts), "skipped": dict(skipped or {}), **dict(extra or {}),
                "files": dict(sorted(self.files.items()))}
        previous = read_manifest(self.out)
        new = json.loads(json.dumps({"manifest_version": MANIFEST_VERSION, "format": self.format,
                                     "cen_version": cen_version(), "options": self.options, **body}))
        if previous is not None and _without_time(previous) == _without_time(new):
            return previous  # nothing changed: the manifest (and its mtime) stays as it is
        self._save(body)
        return read_manifest(self.out) or {}


def _without_time(manifest: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k != "created"}


def iter_chunks(n: int, size: int) -> Iterator[tuple[int, int, int]]:
    """``(shard index, start, stop)`` of ``n`` rows in shards of ``size`` rows."""
    if size < 1:
        raise ExportError(f"shard size must be at least 1 row, got {size}")
    for i, start in enumerate(range(0, n, size)):
        yield i, start, min(n, start + size)


def n_shards(n: int, size: int) -> int:
    return max(1, -(-n // size)) if n else 0


def verify_export(out: str | Path) -> list[str]:
    """Problems of an export folder against its manifest (missing files, changed bytes); empty
    when every listed file is present with its sha256."""
    out = Path(out)
    manifest = read_manifest(out)
    if manifest is None:
        raise ExportError(f"{out}: no {MANIFEST}; not a cen export")
    problems = []
    for rel, entry in manifest.get("files", {}).items():
        p = out / rel
        if not p.exists():
            problems.append(f"{rel}: missing")
        elif p.stat().st_size != entry["bytes"] or sha256_file(p) != entry["sha256"]:
            problems.append(f"{rel}: changed since export")
    if not manifest.get("complete"):
        problems.append(f"{MANIFEST}: export did not finish (run the same command to resume)")
    return problems
