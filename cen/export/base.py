"""Facts every format shares: where a tile's files go inside an export, the per-sample
metadata, and what an export run reports.

Files of a tile are written once per tile (two captions of one tile share its image):
``images/{kind}/{tile}.png`` (``kind`` = ``rgb``, ``b567``, ``b81112`` or ``label`` when the
label map stands in for a missing Sentinel-2 image), ``labels/{tile}.png`` (ChatEarthNet
colours), ``labels/{tile}.tif`` (WorldCover codes) and ``multispectral/{tile}.tif`` (the
nine-band stack) — always relative to the export folder.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from cen.export.samples import Samples, metadata, safe_key

CONFIG_DESCRIPTIONS = {
    "captions": "captions (one row per tile x paradigm)",
    "vqa": "label-grounded questions and answers (one row per question)",
}
"""What each set is; ``captions_<variant>`` sets are attribute-ablation captions."""

LEAN_META = ("tile_id", "paradigm", "split", "lon", "lat", "datetime", "source", "verification_status",
             "image_kind", "task", "format", "qid", "choices", "answer_value")
"""Metadata kept in formats whose whole file is one JSON document (LLaVA, COCO): enough to find the
tile and its status; the full metadata is in the ``hf``/``wds``/``stac`` exports."""


def describe_set(name: str) -> str:
    if name in CONFIG_DESCRIPTIONS:
        return CONFIG_DESCRIPTIONS[name]
    return f"attribute-ablation captions, variant {name.removeprefix('captions_')!r} (keyed like the captions)"


def image_rel(kind: str, tile_id: str, ext: str = "png") -> str:
    """Where a tile's image of ``kind`` goes: ``images/{kind}/{tile}.{ext}``."""
    return f"images/{kind}/{safe_key(tile_id)}.{ext}"


def label_rel(tile_id: str, ext: str = "png") -> str:
    return f"labels/{safe_key(tile_id)}.{ext}"


def multispectral_rel(tile_id: str) -> str:
    return f"multispectral/{safe_key(tile_id)}.tif"


def extra_kinds(row, kinds: tuple[str, ...]) -> dict[str, str]:
    """The band-group PNGs of a sample beyond its ``image``, ``{kind: absolute path}`` (present only)."""
    return {k: row[f"_{k}"] for k in kinds[1:] if isinstance(row.get(f"_{k}"), str)}


def has_label(row) -> bool:
    return isinstance(row.get("_label"), str)


def row_metadata(row, lean: bool = False) -> dict[str, Any]:
    """A sample's metadata (everything but id, caption and file paths); ``lean``: :data:`LEAN_META` only."""
    meta = metadata(row, exclude=("id", "caption", "question", "answer"))
    if lean:
        meta = {k: v for k, v in meta.items() if k in LEAN_META}
    return meta


def text_of(row: pd.Series, set_name: str) -> str:
    """The sample's text: the caption, or for a question its answer."""
    return str(row["answer"] if set_name == "vqa" else row["caption"])


def meta_json(row) -> str:
    return json.dumps(row_metadata(row), ensure_ascii=False, sort_keys=True, allow_nan=False)


def iter_split(frame: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """``(split, rows)`` in export order (rows keep their sorted order)."""
    for split in dict.fromkeys(frame["split"]):
        yield split, frame[frame["split"] == split]


def records(frame: pd.DataFrame) -> list[dict]:
    """The rows of a sample table as dicts (what the format writers iterate); column by column,
    which is several times faster than ``DataFrame.to_dict("records")``."""
    cols = list(frame.columns)
    values = [frame[c].tolist() for c in cols]
    return [dict(zip(cols, row)) for row in zip(*values)]


@dataclass
class ExportResult:
    """What an export did: where, which format, rows per set and split, skipped inputs with their
    reasons, failed samples (a file that could not be read), files written / kept / removed."""

    out: Path
    format: str
    counts: dict[str, dict[str, int]]
    skipped: pd.DataFrame
    failed: pd.DataFrame
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    tiles_line: str = ""
    """How many tiles the workdir has and which were eligible (empty for the release)."""

    @property
    def n_exported(self) -> int:
        return sum(n for per in self.counts.values() for n in per.values())

    def summary(self) -> str:
        """One line: exported per set, skipped per reason, failed, files written / kept."""
        parts = [f"{self.format} -> {self.out}: " + ", ".join(
            f"{name} {sum(per.values())} ({', '.join(f'{s} {n}' for s, n in per.items())})"
            for name, per in self.counts.items())]
        if len(self.skipped):
            reasons = self.skipped["reason"].value_counts()
            parts.append(f"skipped {len(self.skipped)} (" + ", ".join(f"{r}: {n}" for r, n in reasons.items()) + ")")
        parts.append(f"failed {len(self.failed)}")
        parts.append(f"files written {len(self.written)}, unchanged {len(self.kept)}, removed {len(self.removed)}")
        return "; ".join(parts)


def check_files(samples: Samples, multispectral: bool) -> pd.DataFrame:
    """Drop (in place) samples whose files are gone; returns them as failures
    (``set, tile_id, key, error``). Each file is stat'ed once; its ``size:mtime_ns`` goes to
    ``samples.stamps`` for the shard fingerprints."""
    failed = []
    cache: dict[str, bool] = {}

    def exists(p: str) -> bool:
        if p not in cache:
            try:
                st = os.stat(p)
                cache[p] = stat.S_ISREG(st.st_mode)
                samples.stamps[p] = f"{st.st_size}:{st.st_mtime_ns}"
            except OSError:
                cache[p] = False
        return cache[p]

    for name, frame in list(samples.sets.items()):
        bad = []
        cols = ["_image", *[f"_{k}" for k in samples.kinds[1:]], "_label"] + (["_image_tif"] if multispectral else [])
        columns = [frame[c].tolist() if c in frame.columns else [None] * len(frame) for c in cols]
        for i, paths in enumerate(zip(*columns)):
            gone = [p for p in paths if isinstance(p, str) and not exists(p)]
            if gone:
                bad.append(i)
                failed.append({"set": name, "tile_id": frame["tile_id"].iat[i], "key": frame["id"].iat[i],
                               "error": f"{gone[0]}: file not found"})
        if bad:
            samples.sets[name] = frame.drop(index=frame.index[bad]).reset_index(drop=True)
    return pd.DataFrame(failed, columns=["set", "tile_id", "key", "error"])


def write_tile_files(writer, row, kinds: tuple[str, ...], *, multispectral: bool = False) -> dict[str, Any]:
    """Copy a sample's files into the export (once per tile: an unchanged file is kept) and
    return their relative paths: ``image`` (or ``None``), ``images`` (``{kind: path}`` of every
    band group written, the image's own kind first), ``label`` and ``multispectral`` (or ``None``)."""
    out: dict[str, Any] = {"image": None, "images": {}, "label": None, "multispectral": None}
    if isinstance(row.get("_image"), str):
        rel = label_rel(row["tile_id"]) if row["image_kind"] == "label" else image_rel(row["image_kind"], row["tile_id"])
        writer.put_file(rel, row["_image"])
        out["image"] = rel
        out["images"][row["image_kind"]] = rel
    for kind, path in extra_kinds(row, kinds).items():
        rel = image_rel(kind, row["tile_id"])
        writer.put_file(rel, path)
        out["images"][kind] = rel
    if has_label(row):
        out["label"] = label_rel(row["tile_id"])
        writer.put_file(out["label"], row["_label"])
    if multispectral and isinstance(row.get("_image_tif"), str):
        out["multispectral"] = multispectral_rel(row["tile_id"])
        writer.put_file(out["multispectral"], row["_image_tif"])
    return out


def json_list(items) -> Iterator[bytes]:
    """A JSON list streamed item by item (one item per line)."""
    yield b"["
    first = True
    for item in items:
        yield (b"\n" if first else b",\n") + json.dumps(item, ensure_ascii=False, allow_nan=False).encode("utf-8")
        first = False
    yield b"\n]\n"
