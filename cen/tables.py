"""Files passed between stages: atomic writes, checked reads, portable paths, failure tables.

Every stage writes its outputs through :func:`atomic_path`, so a killed run never leaves a
half-written file under the final name (and the file gets the mode the umask gives, like any
other file the user makes), and reads the previous stage's table through :func:`read_table`,
which names the file and the missing column instead of failing later.

Paths stored in a table are relative to the table's workdir (:func:`relative_to_workdir`) and
are read back with :func:`resolve_path`, so a workdir can be moved or zipped. A stage that
meets a bad tile records it in a failures table beside its output (:func:`write_failures`)
and goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    The temporary file is a hidden sibling (same folder, so the rename is atomic) and is
    removed if the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp makes 0600 whatever the umask
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def current_umask() -> int:
    """The process umask (read without changing it for longer than the call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_digest(path: str | Path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest (``sha256``, ``md5`` or any :mod:`hashlib` name) of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_parquet(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a (Geo)DataFrame to Parquet atomically, without the index."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(path)


def read_table(
    path: str | Path,
    required: Sequence[str],
    *,
    what: str,
    made_by: str,
    reader: Callable[[Path], pd.DataFrame] = pd.read_parquet,
    error: type[Exception] = KeyError,
) -> pd.DataFrame:
    """Read a stage's table and check that it has the ``required`` columns.

    ``what`` names the table and ``made_by`` the step that writes it, for the error raised
    when the file is absent (``FileNotFoundError``) or lacks a column (``error``, naming the
    file and the first missing column).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what} not found (run {made_by} first)")
    frame = reader(path)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        listed = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise error(f"{path}: missing column {missing[0]!r} in the {what} ({len(missing)} required column(s) "
                    f"missing: {listed})")
    return frame


def resolve_path(value: str | os.PathLike | None, workdir: str | Path) -> Path | None:
    """A path stored in a table, as a path to open: relative values are taken from ``workdir``
    (the folder of the table), absolute ones as they are; ``None``/NaN/empty stay ``None``.
    URLs (``http(s)://``, ``s3://``, ``/vsi…``) are returned unchanged as :class:`str`-like paths."""
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return None
    text = os.fspath(value)
    if "://" in text or text.startswith("/vsi"):
        return text  # type: ignore[return-value]
    path = Path(text)
    return path if path.is_absolute() else Path(workdir) / path


def relative_to_workdir(path: str | os.PathLike | None, workdir: str | Path) -> str | None:
    """How a table stores ``path``: relative to ``workdir`` (POSIX separators) when it lies
    inside it, else absolute; ``None`` stays ``None``."""
    if path is None:
        return None
    text = os.fspath(path)
    if "://" in text or text.startswith("/vsi"):
        return text
    absolute = Path(text).resolve()
    try:
        return absolute.relative_to(Path(workdir).resolve()).as_posix()
    except ValueError:
        return str(absolute)


def _is_path_column(name: object) -> bool:
    return isinstance(name, str) and name.endswith("_path")


def resolve_path_columns(frame: pd.DataFrame, workdir: str | Path,
                         columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A copy of ``frame`` whose path columns (default: every column named ``*_path``) hold
    paths to open (:func:`resolve_path` against ``workdir``, as ``str``; null stays null). A
    relative ``workdir`` is made absolute first, so the paths stay right from any folder and
    :func:`relative_path_columns` can store them relative to the workdir again."""
    workdir = Path(workdir).absolute()
    out = frame.copy()
    for col in (columns if columns is not None else [c for c in frame.columns if _is_path_column(c)]):
        if col in out.columns:
            out[col] = pd.Series([None if (p := resolve_path(v if isinstance(v, (str, os.PathLike)) else None,
                                                             workdir)) is None else str(p) for v in out[col]],
                                 index=out.index, dtype=object)
    return out


def relative_path_columns(frame: pd.DataFrame, workdir: str | Path,
                          columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A copy of ``frame`` whose path columns (default: every ``*_path`` column) are stored the
    portable way: absolute paths inside ``workdir`` become relative (:func:`relative_to_workdir`);
    relative paths (already relative to ``workdir``), URLs and paths outside stay as they are."""
    out = frame.copy()
    for col in (columns if columns is not None else [c for c in frame.columns if _is_path_column(c)]):
        if col not in out.columns:
            continue
        values = []
        for v in out[col]:
            if not isinstance(v, (str, os.PathLike)) or v == "":
                values.append(None)
            elif Path(os.fspath(v)).is_absolute():
                values.append(relative_to_workdir(v, workdir))
            else:
                values.append(Path(os.fspath(v)).as_posix() if "://" not in os.fspath(v) else os.fspath(v))
        out[col] = pd.Series(values, index=out.index, dtype=object)
    return out


FAILURE_COLUMNS = ("tile_id", "stage", "error")
"""Columns of a failures table: which tile, which stage, and the one-line error."""


def failures_path(output: str | Path) -> Path:
    """Where a stage's failures table goes: ``<output stem>_failures.parquet`` beside ``output``."""
    output = Path(output)
    return output.with_name(f"{output.stem}_failures.parquet")


def write_failures(output: str | Path, failures: Sequence[dict] | pd.DataFrame) -> Path | None:
    """Write the failures of the stage that writes ``output`` beside it (``tile_id``, ``stage``,
    ``error``); with no failures, remove a stale table and return ``None``."""
    path = failures_path(output)
    frame = pd.DataFrame(list(failures) if not isinstance(failures, pd.DataFrame) else failures,
                         columns=list(FAILURE_COLUMNS))
    if frame.empty:
        path.unlink(missing_ok=True)
        return None
    frame = frame.astype({"tile_id": "string", "stage": "string", "error": "string"})
    return write_parquet(frame, path)


def read_failures(output: str | Path) -> pd.DataFrame:
    """The failures table beside ``output`` (empty when the stage had none)."""
    path = failures_path(output)
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype="string") for c in FAILURE_COLUMNS})
    return read_table(path, FAILURE_COLUMNS, what="failures table", made_by="the stage that writes "
                      f"{Path(output).name}")
