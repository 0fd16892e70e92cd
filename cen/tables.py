"""Files passed between stages: atomic writes and checked reads.

Every stage writes its outputs through :func:`atomic_path`, so a killed run never leaves a
half-written file under the final name, and reads the previous stage's table through
:func:`read_table`, which names the file and the missing column instead of failing later.
"""

from __future__ import annotations

import contextlib
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
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


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
