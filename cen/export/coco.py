"""COCO-captions JSON per set and split: ``annotations/{set}_{split}.json``.

``{"info", "licenses", "images": [{"id", "file_name", "width", "height", "license", "tile_id",
...}], "annotations": [{"id", "image_id", "caption", "sample_id", "paradigm"}]}`` — what
pycocotools' ``COCO`` loads and ``cen metrics evaluate`` reads as references (every caption of
a tile is one reference of its image). ``file_name`` is relative to the export folder; images
are copied to ``images/{kind}/{tile}.png`` (a release without image archives keeps the
release's image name and ships no file).

Ids are stable integers: the first 48 bits of the sha256 of the tile id (images) and of the
sample id (annotations), so adding tiles never renumbers the others; a collision (never seen,
but checked) is an error.
"""

from __future__ import annotations

import hashlib
import time

from tqdm.auto import tqdm

from cen.export.base import iter_split, records, row_metadata, write_tile_files
from cen.export.samples import Samples
from cen.export.writer import ExportError, ExportWriter

LICENSES = [
    {"id": 1, "name": "CC BY 4.0 (ESA WorldCover labels; captions as licensed by their maker)",
     "url": "https://creativecommons.org/licenses/by/4.0/"},
    {"id": 2, "name": "Copernicus Sentinel data terms (modified Copernicus Sentinel data)",
     "url": "https://sentinels.copernicus.eu/documents/247904/690755/Sentinel_Data_Legal_Notice"},
]


def stable_int(text: str) -> int:
    """A stable positive 48-bit integer id of ``text`` (exact in JSON and float64)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:6], "big")


def file_name(set_name: str, split: str) -> str:
    return f"annotations/{set_name}_{split}.json"


def write(samples: Samples, writer: ExportWriter, *, progress: bool = True, multispectral: bool = False,
          **_: object) -> dict[str, dict[str, int]]:
    """Write the caption sets of ``samples`` (questions are not captions: ``vqa`` is left to
    the llava / hf / wds formats); returns annotations per set and split."""
    counts: dict[str, dict[str, int]] = {}
    for set_name, frame in samples.sets.items():
        if set_name == "vqa":
            continue
        counts[set_name] = {}
        for split, rows in iter_split(frame):
            images: dict[int, dict] = {}
            annotations = []
            ann_ids: dict[int, str] = {}
            for row in tqdm(records(rows), total=len(rows), desc=f"coco {set_name} {split}", unit="caption",
                               disable=not progress, leave=False):
                files = write_tile_files(writer, row, samples.kinds, multispectral=multispectral)
                image_id = stable_int(row["tile_id"])
                if image_id not in images:
                    meta = row_metadata(row, lean=True)
                    meta.pop("paradigm", None)
                    meta.pop("verification_status", None)
                    images[image_id] = {
                        "id": image_id,
                        "file_name": files["image"] or row.get("release_image") or f"{row['tile_id']}.png",
                        "width": int(row.get("width") or 256), "height": int(row.get("height") or 256),
                        "license": 2 if row.get("image_kind") in ("rgb", "b567", "b81112") else 1,
                        **({"label": files["label"]} if files["label"] else {}),
                        **({"band_images": files["images"]} if len(files["images"]) > 1 else {}), **meta,
                    }
                elif images[image_id]["tile_id"] != row["tile_id"]:
                    raise ExportError(f"image id {image_id} of tiles {images[image_id]['tile_id']!r} and "
                                      f"{row['tile_id']!r} collide")
                ann_id = stable_int(row["id"])
                if ann_id in ann_ids:
                    raise ExportError(f"annotation id {ann_id} of {ann_ids[ann_id]!r} and {row['id']!r} collide")
                ann_ids[ann_id] = row["id"]
                annotations.append({"id": ann_id, "image_id": image_id, "caption": str(row["caption"]),
                                    "sample_id": row["id"], "paradigm": row.get("paradigm"),
                                    "verification_status": row.get("verification_status")})
            doc = {
                "info": {"description": f"cen export: {set_name}, split {split}", "version": "1.0",
                         "year": int(time.gmtime().tm_year), "contributor": "cen (ChatEarthNet toolkit)",
                         "url": "https://doi.org/10.5194/essd-17-1245-2025"},
                "licenses": LICENSES,
                "images": list(images.values()),
                "annotations": annotations,
            }
            writer.put_json(file_name(set_name, split), doc, indent=None)
            counts[set_name][split] = len(annotations)
    return counts
