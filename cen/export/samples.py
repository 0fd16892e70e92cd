"""What an export holds: one row per sample (caption, question), read from a workdir or the release.

Every format writes the same rows, so this module decides once, for all of them:

* **which captions**: ``captions="accepted"`` (default) keeps a caption when verification
  accepted it (``verification_status`` in :data:`ACCEPTED_STATUSES` and an ``accepted_text``);
  ``captions="all"`` keeps every caption with a text (the accepted text where there is one) and
  says its status. Only eligible tiles (``cen.tiling.eligible_mask``; a table without the column:
  every tile) and the asked ``splits`` / ``paradigms`` are kept;
* **which image**: the asked band group's PNG (:data:`IMAGE_CHOICES`); a tile that has no
  Sentinel-2 image but a label map gets its colour-rendered label map as image
  (``image_kind = "label"``: what ChatEarthNet's GPT-4V was shown), unless
  ``label_as_image=False``, when it is skipped with the reason;
* **which id**: :func:`sample_id` = tile id + ``__`` + paradigm (or question id), with every
  character outside ``[A-Za-z0-9_-]`` replaced by ``-`` so that ids are file names and
  WebDataset keys (no dots);
* **extra sets**, written by each format as extra files / configs when present in the workdir:
  ``vqa.parquet`` (label-grounded questions) and ``captions_<variant>.parquet`` (attribute
  ablations keyed like the captions). Absent files are simply not exported.

Every input row ends either in the sample table or in the ``skipped`` table with its reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from cen.tables import resolve_path

SPLITS = ("train", "val", "test")
"""Split order of every export (rows are sorted by split, then tile id, then paradigm / question)."""

IMAGE_CHOICES: dict[str, tuple[str, ...]] = {
    "rgb": ("rgb",),
    "b567": ("b567",),
    "b81112": ("b81112",),
    "all": ("rgb", "b567", "b81112"),
}
"""``--images`` choices: the band groups written per sample (the first is the sample's ``image``)."""

ACCEPTED_STATUSES = ("clean", "auto_fixed", "accepted", "edited")
"""Verification statuses of a caption that may be exported by default (``needs_review`` and
``rejected`` are not)."""

TILE_META = ("source", "lon", "lat", "crs", "transform", "width", "height", "datetime", "s2_item_id",
             "label_product", "label_tiles", "processing_baseline", "offset_applied", "nodata_fraction",
             "labelled_fraction", "provenance")
"""Tile columns every sample carries (when the tiles table has them)."""

CAPTION_META = ("model_requested", "model_returned", "template_version", "messages_hash", "verification_status",
                "flags", "consistency", "label_precision", "label_recall", "spatial_accuracy", "verify_version",
                "generated_at", "attributes")
"""Caption columns every caption sample carries (when the captions table has them)."""

VQA_META = ("qid", "task", "format", "question", "answer", "choices", "answer_value", "class_a", "class_b",
            "region", "template_id")
"""Question columns every question sample carries (``answer_value`` as JSON text)."""

PATH_COLUMNS = {"rgb": "rgb_png_path", "b567": "b567_png_path", "b81112": "b81112_png_path",
                "label": "label_png_path", "label_tif": "label_path", "image_tif": "image_path"}
"""Files of a tile by kind, and the tiles-table column that holds each path."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def safe_key(text: str) -> str:
    """``text`` with every character outside ``[A-Za-z0-9_-]`` replaced by ``-``."""
    return _UNSAFE.sub("-", str(text))


def sample_id(tile_id: str, suffix: str) -> str:
    """Stable id of a sample: ``{tile_id}__{suffix}`` (paradigm or question id), file- and key-safe."""
    return f"{safe_key(tile_id)}__{safe_key(suffix)}"


@dataclass
class Samples:
    """The rows of an export: ``sets`` maps a set name (``captions``, ``captions_<variant>``,
    ``vqa``) to a table with one row per sample; ``skipped`` lists what was left out and why."""

    sets: dict[str, pd.DataFrame]
    skipped: pd.DataFrame
    source: str
    """``workdir`` or ``release``."""
    root: Path
    kinds: tuple[str, ...]
    """Band groups asked for (:data:`IMAGE_CHOICES`)."""
    notes: list[str] = field(default_factory=list)
    tiles_line: str = ""
    """``cen.tiling.eligibility_summary`` of the tiles table (a workdir export), e.g.
    ``"374 tiles: 336 eligible, 38 excluded (mostly_nodata: 38)"``."""
    stamps: dict[str, str] = field(default_factory=dict)
    """``size:mtime_ns`` of every source file, filled by :func:`cen.export.base.check_files`."""

    @property
    def captions(self) -> pd.DataFrame:
        return self.sets["captions"]

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per set and split."""
        return {name: {s: int(n) for s, n in frame["split"].value_counts().reindex(
            [s for s in SPLITS if s in set(frame["split"])] + sorted(set(frame["split"]) - set(SPLITS))).items()}
            for name, frame in self.sets.items()}

    def skipped_counts(self) -> dict[str, int]:
        """Skipped inputs per reason."""
        return {str(k): int(v) for k, v in self.skipped["reason"].value_counts().items()} if len(self.skipped) else {}


def _skipped(rows: Iterable[dict]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=["set", "tile_id", "key", "reason"])


def _jsonable(value):
    """Table values as plain Python (lists for arrays, ISO text for times, None for NaN)."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        out = value.tolist()
        return out if value.dtype != object else [v if type(v) is str else _jsonable(v) for v in out]
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _portable(value):
    if isinstance(value, str) and value.startswith("/") and not value.startswith("/vsi"):
        return Path(value).name
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    return value


def portable_provenance(text):
    """A tile's provenance JSON with local absolute paths cut to their file names (an export
    names no folder of the machine it was made on; URLs are kept)."""
    if not isinstance(text, str) or '"/' not in text:
        return text  # no string value that starts with "/": nothing to cut
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text
    return json.dumps(_portable(data), sort_keys=True, ensure_ascii=False)


def plain_values(column: pd.Series) -> list:
    """A column as plain JSON-ready Python values (``None`` for NA/NaN, lists for arrays, ISO text
    for times); numeric columns without gaps pass through as they are."""
    if column.dtype.kind in "iub" and not column.hasnans:
        return column.tolist()
    if column.dtype.kind == "f" and isinstance(column.dtype, np.dtype):
        return [None if v != v else v for v in column.tolist()]
    return [v if type(v) is str else _jsonable(v) for v in column.tolist()]


def eligible(tiles: pd.DataFrame) -> pd.Series:
    """Which tiles later stages use: ``cen.tiling.eligible_mask`` where it exists, else the
    ``eligible`` column, else every tile."""
    from cen import tiling

    mask_of = getattr(tiling, "eligible_mask", None)
    if mask_of is not None:
        return mask_of(tiles).astype(bool)
    if "eligible" in tiles.columns:
        return tiles["eligible"].astype("boolean").fillna(True).astype(bool)
    return pd.Series(True, index=tiles.index)


def _tile_frame(workdir: Path) -> pd.DataFrame:
    """tiles.parquet with resolved file paths, geometry as WKT + bbox, one row per tile id."""
    import geopandas as gpd

    path = workdir / "tiles.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path}: tiles table not found (run notebook 01 / `cen tiles` first)")
    tiles = gpd.read_parquet(path)
    for col in ("tile_id", "split"):
        if col not in tiles.columns:
            raise ValueError(f"{path}: missing column {col!r} in the tiles table")
    if tiles["tile_id"].duplicated().any():
        raise ValueError(f"{path}: tile_id {tiles.loc[tiles['tile_id'].duplicated(), 'tile_id'].iloc[0]!r} occurs twice")
    import shapely

    out = pd.DataFrame({"tile_id": tiles["tile_id"].astype(str).to_numpy(), "split": tiles["split"].astype(str).to_numpy(),
                        "_eligible": eligible(tiles).to_numpy()})
    geom = tiles.geometry.values
    out["geometry"] = shapely.to_wkt(np.asarray(geom), rounding_precision=-1)
    out["bbox"] = [None if np.isnan(b).any() else b for b in shapely.bounds(np.asarray(geom)).tolist()]
    for col in TILE_META:
        if col in tiles.columns:
            out[col] = plain_values(tiles[col])
    if "provenance" in out.columns:
        out["provenance"] = [portable_provenance(v) for v in out["provenance"]]
    resolve = path_resolver(workdir)
    for kind, col in PATH_COLUMNS.items():
        values = tiles[col].tolist() if col in tiles.columns else [None] * len(tiles)
        out[f"_{kind}"] = [resolve(v) if isinstance(v, str) and v else None for v in values]
    from cen import tiling

    summary = getattr(tiling, "eligibility_summary", None)
    out.attrs["eligibility"] = summary(tiles) if summary is not None else ""
    return out.set_index("tile_id", drop=False)


def path_resolver(workdir: Path):
    """``value -> str path``: :func:`cen.tables.resolve_path` applied to each stored path's folder
    (once per distinct folder, cached) and the file name joined to it -- the same answer as
    resolving every value, without a pathlib round trip per row. URLs go to ``resolve_path`` whole."""
    import os
    from functools import lru_cache

    @lru_cache(maxsize=4096)
    def folder(d: str) -> str:
        return str(resolve_path(d or ".", workdir))

    def resolve(value: str) -> str | None:
        if "://" in value or value.startswith("/vsi"):
            return str(resolve_path(value, workdir))
        d, name = os.path.split(value)
        return os.path.join(folder(d), name)

    return resolve


def _attach_images(frame: pd.DataFrame, kinds: Sequence[str], label_as_image: bool, set_name: str,
                   skipped: list[dict]) -> pd.DataFrame:
    """Add ``image_kind`` and ``_image`` (the sample's image file); drop rows without one (skipped)."""
    primary = kinds[0]
    image, kind = [], []
    for rgb, label in zip(frame[f"_{primary}"].tolist(), frame["_label"].tolist()):
        if isinstance(rgb, str):
            image.append(rgb), kind.append(primary)
        elif label_as_image and isinstance(label, str):
            image.append(label), kind.append("label")
        else:
            image.append(None), kind.append(None)
    frame = frame.assign(_image=image, image_kind=kind)
    missing = frame["_image"].isna()
    for tile_id, key in zip(frame.loc[missing, "tile_id"], frame.loc[missing, "id"]):
        why = f"no {primary} image" + ("" if label_as_image else " (label maps not used as images)")
        if label_as_image:
            why += " and no label map"
        skipped.append({"set": set_name, "tile_id": tile_id, "key": key, "reason": why})
    return frame[~missing]


def _caption_rows(table: pd.DataFrame, tiles: pd.DataFrame, set_name: str, captions: str, source: str,
                  skipped: list[dict], verified: bool) -> pd.DataFrame:
    """Caption rows joined to their tiles, filtered by eligibility and verification."""
    from cen.verify.lexicon import normalise_paradigm

    for col in ("tile_id", "paradigm"):
        if col not in table.columns:
            raise ValueError(f"{source}: missing column {col!r}")
    has_text = "accepted_text" in table.columns or "text" in table.columns
    if not has_text:
        raise ValueError(f"{source}: missing column 'text' (or 'accepted_text')")
    rows = table.reset_index(drop=True).copy()
    rows["tile_id"] = rows["tile_id"].astype(str)
    rows["paradigm"] = [normalise_paradigm(p) for p in rows["paradigm"]]
    rows["id"] = [sample_id(t, p) for t, p in zip(rows["tile_id"], rows["paradigm"])]
    keep = np.ones(len(rows), dtype=bool)
    texts = []
    n = len(rows)
    status = rows["verification_status"].tolist() if "verification_status" in rows.columns else [None] * n
    accepted = rows["accepted_text"].tolist() if "accepted_text" in rows.columns else [None] * n
    raw = rows["text"].tolist() if "text" in rows.columns else [None] * n
    gen = rows["status"].tolist() if "status" in rows.columns else [None] * n
    known = set(tiles.index)
    usable = set(tiles.index[tiles["_eligible"].to_numpy(dtype=bool)])
    for i, (tile_id, key) in enumerate(zip(rows["tile_id"].tolist(), rows["id"].tolist())):
        acc = accepted[i] if isinstance(accepted[i], str) and accepted[i].strip() else None
        txt = raw[i] if isinstance(raw[i], str) and raw[i].strip() else None
        reason = None
        if verified and captions == "accepted":
            if status[i] not in ACCEPTED_STATUSES:
                reason = f"verification status {status[i]!r} (not accepted)"
            elif acc is None:
                reason = "no accepted text"
            text = acc
        else:
            text = acc or txt
            if text is None:
                reason = "empty caption" + (f" (generation status {gen[i]!r})" if gen[i] else "")
            elif not verified and gen[i] is not None and gen[i] not in ("ok", "cached", "recovered"):
                reason = f"generation status {gen[i]!r}"
        if reason is None and tile_id not in known:
            reason = "tile not in tiles.parquet"
        elif reason is None and tile_id not in usable:
            reason = "tile not eligible"
        if reason is not None:
            keep[i] = False
            skipped.append({"set": set_name, "tile_id": tile_id, "key": key, "reason": reason})
        texts.append(text)
    rows["caption"] = texts
    dup = rows["id"].duplicated(keep=False)
    if dup.any():
        first = rows.loc[dup, "id"].iloc[0]
        tiles_of = sorted(set(rows.loc[rows["id"] == first, "tile_id"]))
        if len(tiles_of) > 1:
            raise ValueError(f"{source}: tile ids {tiles_of[0]!r} and {tiles_of[1]!r} give the same export id {first!r} "
                             f"(characters outside [A-Za-z0-9_-] become '-'); rename one of the tiles")
        raise ValueError(f"{source}: caption {first} (tile_id + paradigm) occurs twice")
    rows = rows[keep]
    meta = [c for c in CAPTION_META if c in rows.columns]
    out = rows[["id", "tile_id", "paradigm", "caption", *meta]].copy()
    for c in meta:
        out[c] = plain_values(out[c])
    return out


def _value_json(value) -> str:
    """``answer_value`` as JSON text: a string that already is JSON stays as it is."""
    if isinstance(value, str):
        try:
            json.loads(value)
            return value
        except json.JSONDecodeError:
            pass
    return json.dumps(value)


def _vqa_rows(table: pd.DataFrame, tiles: pd.DataFrame, source: str, skipped: list[dict]) -> pd.DataFrame:
    for col in ("tile_id", "qid", "question", "answer"):
        if col not in table.columns:
            raise ValueError(f"{source}: missing column {col!r}")
    rows = table.reset_index(drop=True).copy()
    rows["tile_id"] = rows["tile_id"].astype(str)
    rows["id"] = [sample_id(t, q.removeprefix(f"{t}/")) for t, q in zip(rows["tile_id"], rows["qid"].astype(str))]
    if rows["id"].duplicated().any():
        raise ValueError(f"{source}: question {rows.loc[rows['id'].duplicated(), 'id'].iloc[0]} occurs twice")
    known = rows["tile_id"].isin(tiles.index)
    ok = known & rows["tile_id"].map(lambda t: bool(tiles.at[t, "_eligible"]) if t in tiles.index else False)
    for t, k, kn in zip(rows.loc[~ok, "tile_id"], rows.loc[~ok, "id"], known[~ok]):
        skipped.append({"set": "vqa", "tile_id": t, "key": k, "reason": "tile not eligible" if kn else
                        "tile not in tiles.parquet"})
    rows = rows[ok]
    meta = [c for c in VQA_META if c in rows.columns]
    out = rows[["id", "tile_id", *meta]].copy()
    for c in meta:
        out[c] = [_jsonable(v) for v in out[c]]
    if "answer_value" in out.columns:
        out["answer_value"] = [_value_json(v) for v in out["answer_value"]]
    if "qid" in out.columns:
        out["qid"] = out["qid"].astype(str)
    if "split" in table.columns:
        pass  # the tile's split is authoritative (it is the same by construction)
    return out


def variant_names(workdir: str | Path) -> list[str]:
    """Caption variants present in a workdir: ``captions_<variant>.parquet`` (not ``verified`` nor
    a ``*_failures`` table), sorted."""
    out = []
    for p in sorted(Path(workdir).glob("captions_*.parquet")):
        name = p.stem.removeprefix("captions_")
        if name == "verified" or name.endswith("_failures") or not name:
            continue
        out.append(name)
    return out


def _finish(frame: pd.DataFrame, tiles: pd.DataFrame, kinds: Sequence[str], splits: Sequence[str] | None,
            set_name: str, label_as_image: bool, skipped: list[dict]) -> pd.DataFrame:
    joined = frame.join(tiles.drop(columns=["tile_id"]), on="tile_id")
    if splits:
        out_of = ~joined["split"].isin(splits)
        for t, k, s in zip(joined.loc[out_of, "tile_id"], joined.loc[out_of, "id"], joined.loc[out_of, "split"]):
            skipped.append({"set": set_name, "tile_id": t, "key": k, "reason": f"split {s!r} not asked for"})
        joined = joined[~out_of]
    joined = _attach_images(joined, kinds, label_as_image, set_name, skipped)
    order = {s: i for i, s in enumerate(SPLITS)}
    joined = joined.assign(_order=joined["split"].map(lambda s: order.get(s, len(order))))
    joined = joined.sort_values(["_order", "split", "tile_id", "id"], kind="stable").drop(columns=["_order", "_eligible"])
    return joined.reset_index(drop=True)


def workdir_samples(
    workdir: str | Path, *, images: str = "rgb", splits: Sequence[str] | None = None, captions: str = "accepted",
    paradigms: Sequence[str] | None = None, label_as_image: bool = True, extras: bool = True,
) -> Samples:
    """The samples of a built workdir (see the module docstring for what is kept and why).

    Reads ``tiles.parquet`` and ``captions_verified.parquet`` (``captions="all"`` also accepts a
    workdir with only ``captions.parquet``), plus ``vqa.parquet`` and ``captions_<variant>.parquet``
    when ``extras`` and present. Raises naming the file when a table is missing or malformed.
    """
    from cen.verify.lexicon import normalise_paradigm

    if images not in IMAGE_CHOICES:
        raise ValueError(f"unknown --images {images!r}; expected one of {', '.join(IMAGE_CHOICES)}")
    if captions not in ("accepted", "all"):
        raise ValueError(f"unknown --captions {captions!r}; expected 'accepted' or 'all'")
    workdir = Path(workdir)
    kinds = IMAGE_CHOICES[images]
    tiles = _tile_frame(workdir)
    skipped: list[dict] = []
    verified_path = workdir / "captions_verified.parquet"
    if verified_path.exists():
        table, source, verified = pd.read_parquet(verified_path), verified_path, True
    elif captions == "all" and (workdir / "captions.parquet").exists():
        table, source, verified = pd.read_parquet(workdir / "captions.parquet"), workdir / "captions.parquet", False
    else:
        raise FileNotFoundError(f"{verified_path}: verified captions not found (run notebook 04 / `cen verify run` "
                                f"first, or export unverified captions with --captions all)")
    wanted = {normalise_paradigm(p) for p in paradigms} if paradigms else None
    sets: dict[str, pd.DataFrame] = {}
    main = _caption_rows(table, tiles, "captions", captions, str(source), skipped, verified)
    if wanted:
        off = ~main["paradigm"].isin(wanted)
        for t, k, p in zip(main.loc[off, "tile_id"], main.loc[off, "id"], main.loc[off, "paradigm"]):
            skipped.append({"set": "captions", "tile_id": t, "key": k, "reason": f"paradigm {p!r} not asked for"})
        main = main[~off]
    sets["captions"] = _finish(main, tiles, kinds, splits, "captions", label_as_image, skipped)
    notes = []
    if extras:
        for variant in variant_names(workdir):
            path = workdir / f"captions_{variant}.parquet"
            vt = pd.read_parquet(path)
            has_verdict = "verification_status" in vt.columns
            rows = _caption_rows(vt, tiles, f"captions_{variant}", captions, str(path), skipped, has_verdict)
            if wanted:
                rows = rows[rows["paradigm"].isin(wanted)]
            if not has_verdict:
                notes.append(f"captions_{variant}: not verified (generation status ok only)")
            sets[f"captions_{variant}"] = _finish(rows, tiles, kinds, splits, f"captions_{variant}", label_as_image,
                                                  skipped)
        vqa_path = workdir / "vqa.parquet"
        if vqa_path.exists():
            sets["vqa"] = _finish(_vqa_rows(pd.read_parquet(vqa_path), tiles, str(vqa_path), skipped), tiles, kinds,
                                  splits, "vqa", label_as_image, skipped)
    sets = {k: v for k, v in sets.items() if k == "captions" or len(v)}
    return Samples(sets=sets, skipped=_skipped(skipped), source="workdir", root=workdir, kinds=kinds, notes=notes,
                   tiles_line=tiles.attrs.get("eligibility", ""))


def public_columns(frame: pd.DataFrame) -> list[str]:
    """The metadata columns of a sample table (no private ``_path`` columns)."""
    return [c for c in frame.columns if not c.startswith("_")]


def metadata(row: pd.Series | dict, exclude: Sequence[str] = ()) -> dict:
    """A sample's metadata as a JSON-ready dict (every public column but ``exclude``)."""
    items = row.items() if isinstance(row, dict) else row.to_dict().items()
    return {k: _jsonable(v) for k, v in items if not str(k).startswith("_") and k not in exclude}
