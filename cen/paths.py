"""Where things live: the repository's data folder, the download cache and build folders."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""Repository root (the package is installed in editable mode from a clone)."""

DATA_DIR = ROOT / "data"
"""Committed demo inputs and reference tables (immutable; see data/README.md)."""

NOTEBOOKS_DIR = ROOT / "notebooks"
REPORTS_DIR = ROOT / "reports"


def cache_dir() -> Path:
    """Download and generation cache: ``$CEN_CACHE_DIR`` or ``<repo>/.cache`` (git-ignored)."""
    path = Path(os.environ.get("CEN_CACHE_DIR", ROOT / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_dir(name: str = "demo") -> Path:
    """Working folder of one pipeline run (tables passed between notebooks): ``<repo>/build/<name>``."""
    path = Path(os.environ.get("CEN_BUILD_DIR", ROOT / "build")) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_data_dir() -> Path | None:
    """``../shared/data`` beside the checkout (real full-size test data), if present (tests skip without it)."""
    path = Path(os.environ.get("CEN_SHARED_DATA", ROOT.parent / "shared" / "data"))
    return path if path.is_dir() else None
