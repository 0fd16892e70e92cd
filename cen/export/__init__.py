"""Training-ready exports: a built dataset (or the ChatEarthNet release) in the formats that
vision-language trainers and geo tools load.

* :mod:`~cen.export.samples` / :mod:`~cen.export.release` -- what is exported (accepted captions of
  eligible tiles, images, ids, extra sets) from a workdir or the release;
* :mod:`~cen.export.writer` -- the one writer: relative paths, atomic files, shards, resume,
  stale-file removal, ``manifest.json`` (counts, sha256 of every file, ``cen`` version);
* one module per format: :mod:`~cen.export.llava` (LLaVA / GeoChat conversations),
  :mod:`~cen.export.coco` (COCO captions), :mod:`~cen.export.hf` (Hugging Face Parquet + card
  + Croissant, :mod:`~cen.export.card`), :mod:`~cen.export.wds` (WebDataset tars),
  :mod:`~cen.export.stac` (static STAC catalog + stac-geoparquet);
* :mod:`~cen.export.run` -- :func:`export` / :func:`export_release`, the accounting;
* :mod:`~cen.export.dataset` -- :class:`CaptionDataset`, a torch-free indexable dataset over any
  export or workdir.
"""

from cen.export.base import ExportResult
from cen.export.run import FORMATS, export, export_release
from cen.export.samples import ACCEPTED_STATUSES, IMAGE_CHOICES, sample_id, workdir_samples
from cen.export.writer import ExportError, read_manifest, verify_export

__all__ = [
    "ACCEPTED_STATUSES", "CaptionDataset", "DatasetNotFoundError", "ExportError", "ExportResult", "FORMATS", "IMAGE_CHOICES", "export",
    "export_release", "read_manifest", "sample_id", "verify_export", "workdir_samples",
]


def __getattr__(name: str):
    if name in ("CaptionDataset", "DatasetNotFoundError"):
        from cen.export import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'cen.export' has no attribute {name!r}")
