"""Versioned prompt templates: data files in ``cen/prompts/``, one folder per template, checked
against the SHA-256 sums of their manifest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"
"""Folder of the prompt templates: one sub-folder per template with ``manifest.json`` and texts."""

DEFAULT_TEMPLATES = {"gpt35": "chatearthnet-gpt35-v1", "gpt4v": "chatearthnet-gpt4v-v1"}
"""The release's template of each paradigm."""

SINGLE_TILE_VISION_TEMPLATE = "cen-gpt4v-single-v2"
"""One tile per request, the fixed text first (used for a leftover group of fewer than four tiles)."""


class PromptError(ValueError):
    """A template or an input to a prompt is unusable (names the template/tile and the problem)."""


# ----------------------------------------------------------------------------------------------
# templates


@dataclass(frozen=True)
class PromptTemplate:
    """One versioned prompt template: its manifest and its text files (exact bytes, UTF-8)."""

    name: str
    version: str
    paradigm: str
    tiles_per_request: int
    model: str
    max_tokens: int
    texts: Mapping[str, str]
    manifest: Mapping[str, Any]

    @property
    def tag(self) -> str:
        """``name@version`` as stored in ``captions.parquet`` (``template_version``)."""
        return f"{self.name}@{self.version}"


def list_templates() -> list[str]:
    """Names of the templates in :data:`PROMPTS_DIR`."""
    return sorted(p.parent.name for p in PROMPTS_DIR.glob("*/manifest.json"))


@lru_cache(maxsize=16)
def load_template(name: str) -> PromptTemplate:
    """Load a template by name (a folder of :data:`PROMPTS_DIR`) or by path to its folder.

    Checks every text file against the SHA-256 in the manifest, so an editor that adds a
    trailing newline cannot silently change a prompt.
    """
    folder = Path(name) if ("/" in name or Path(name).is_dir()) else PROMPTS_DIR / name
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise PromptError(f"prompt template {name!r}: {manifest_path} not found (known: {', '.join(list_templates())})")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    texts: dict[str, str] = {}
    for fname, digest in manifest.get("sha256", {}).items():
        data = (folder / fname).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise PromptError(f"prompt template {name!r}: {folder / fname} does not match its SHA-256 in manifest.json")
        texts[fname] = data.decode("utf-8")
    for key in ("name", "version", "paradigm", "tiles_per_request", "model", "max_tokens"):
        if key not in manifest:
            raise PromptError(f"prompt template {name!r}: manifest.json lacks {key!r}")
    return PromptTemplate(
        name=manifest["name"], version=str(manifest["version"]), paradigm=manifest["paradigm"],
        tiles_per_request=int(manifest["tiles_per_request"]), model=manifest["model"],
        max_tokens=int(manifest["max_tokens"]), texts=texts, manifest=manifest,
    )

