"""One entry point for every format: :func:`export` (a workdir) and :func:`export_release`.

Both read the samples (:mod:`cen.export.samples`, :mod:`cen.export.release`), check that their
files exist (a missing file is a *failed* sample, the rest goes on), hand them to the format's
``write`` through one :class:`~cen.export.writer.ExportWriter`, and return an
:class:`~cen.export.base.ExportResult` that accounts for every input: exported, skipped (with
the reason) or failed. Nothing to export is an error that says why.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Sequence

import pandas as pd

from cen.export.base import ExportResult, check_files
from cen.export.samples import Samples, workdir_samples
from cen.export.writer import ExportError, ExportWriter

FORMATS = ("llava", "coco", "hf", "wds", "stac")
"""Export formats, one module each in :mod:`cen.export`."""

NEEDS_IMAGE = {"llava"}
"""Formats whose samples are nothing without an image (skipped, with the reason, when there is none)."""


def _check_shard_size(shard_size: int) -> None:
    if not isinstance(shard_size, int) or shard_size < 1:
        raise ExportError(f"shard size must be a whole number of rows >= 1, got {shard_size!r}")


def _run(samples: Samples, out: str | Path, fmt: str, *, options: dict, shard_size: int, seed: int,
         multispectral: bool, progress: bool) -> ExportResult:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    skipped = [samples.skipped]
    if fmt in NEEDS_IMAGE:
        for name, frame in list(samples.sets.items()):
            none = frame["_image"].isna()
            if none.any():
                skipped.append(pd.DataFrame({"set": name, "tile_id": frame.loc[none, "tile_id"],
                                             "key": frame.loc[none, "id"], "reason": f"no image ({fmt} needs one)"}))
                samples.sets[name] = frame[~none].reset_index(drop=True)
    failed = check_files(samples, multispectral)
    samples.skipped = pd.concat([s for s in skipped if len(s)] or [samples.skipped], ignore_index=True)
    if not len(samples.sets.get("captions", ())):
        reasons = samples.skipped_counts()
        why = "; ".join(f"{r}: {n}" for r, n in reasons.items()) or "no captions"
        if len(failed):
            why += f"; failed {len(failed)} (e.g. {failed['error'].iloc[0]})"
        raise ExportError(f"{samples.root}: no caption to export ({why})")
    samples.sets = {k: v for k, v in samples.sets.items() if len(v)}
    module = import_module(f"cen.export.{fmt}")
    with ExportWriter(out, fmt, options) as writer:
        counts = module.write(samples, writer, shard_size=shard_size, seed=seed, multispectral=multispectral,
                              progress=progress)
        manifest = writer.finish(counts, samples.skipped_counts(), extra={
            "source": samples.source, "failed": len(failed), "notes": samples.notes})
    return ExportResult(out=Path(out), format=fmt, counts=counts, skipped=samples.skipped, failed=failed,
                        written=writer.written, kept=writer.kept, removed=writer.removed, notes=samples.notes,
                        manifest=manifest, tiles_line=samples.tiles_line)


def export(
    workdir: str | Path, out: str | Path, fmt: str, *, images: str = "rgb", splits: Sequence[str] | None = None,
    captions: str = "accepted", paradigms: Sequence[str] | None = None, label_as_image: bool = True,
    multispectral: bool = False, shard_size: int = 1000, seed: int = 0, extras: bool = True, progress: bool = True,
) -> ExportResult:
    """Export a built workdir to ``out`` in format ``fmt`` (:data:`FORMATS`).

    ``images``: band group(s) (``rgb``, ``b567``, ``b81112``, ``all``); ``splits`` /
    ``paradigms``: keep only these; ``captions``: ``accepted`` (verification decisions
    respected) or ``all``; ``label_as_image``: label-only tiles export their label map as image
    (else they are skipped); ``multispectral``: also the nine-band GeoTIFF (``wds``, ``stac``,
    ``llava``/``coco`` as files); ``shard_size``: rows per shard (``hf``, ``wds``); ``seed``:
    the LLaVA instruction draw; ``extras``: also ``vqa.parquet`` / ``captions_<variant>.parquet``.
    """
    _check_shard_size(shard_size)
    samples = workdir_samples(workdir, images=images, splits=splits, captions=captions, paradigms=paradigms,
                              label_as_image=label_as_image, extras=extras)
    options = {"images": images, "splits": list(splits or []), "captions": captions,
               "paradigms": list(paradigms or []), "label_as_image": label_as_image, "multispectral": multispectral,
               "shard_size": shard_size, "seed": seed, "extras": extras}
    return _run(samples, out, fmt, options=options, shard_size=shard_size, seed=seed, multispectral=multispectral,
                progress=progress)


def export_release(
    release_dir: str | Path, out: str | Path, fmt: str, *, images: str = "rgb", splits: Sequence[str] | None = None,
    paradigms: Sequence[str] | None = None, shard_size: int = 1000, seed: int = 0, progress: bool = True,
) -> ExportResult:
    """Export the downloaded ChatEarthNet release (:mod:`cen.export.release`) like a workdir."""
    from cen.export.release import release_samples

    _check_shard_size(shard_size)
    samples = release_samples(release_dir, images=images, splits=splits, paradigms=paradigms)
    options = {"release": True, "images": images, "splits": list(splits or []), "paradigms": list(paradigms or []),
               "shard_size": shard_size, "seed": seed}
    return _run(samples, out, fmt, options=options, shard_size=shard_size, seed=seed, multispectral=False,
                progress=progress)
