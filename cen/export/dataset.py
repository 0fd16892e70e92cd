"""A PyTorch-free indexable dataset over any ``cen`` export (or a workdir): :class:`CaptionDataset`."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cen.export.writer import read_manifest


class DatasetNotFoundError(FileNotFoundError):
    """The folder holds neither a ``cen`` export nor a workdir (or lacks the asked split/set)."""


BANDS = ("rgb", "b567", "b81112", "all")


class CaptionDataset:
    """ChatEarthNet-style image-caption pairs from a ``cen export`` folder or a built workdir.

    **Dataset.** Sentinel-2 tiles of 256 x 256 pixels (10 m) with ESA WorldCover land cover
    (eleven classes, ChatEarthNet colours) and captions describing the land cover, region by
    region, in the style of ChatEarthNet (Yuan, Xiong, Mou, Zhu: ESSD 17, 1245-1263, 2025,
    doi:10.5194/essd-17-1245-2025). A workdir's captions are those verification accepted; the
    release's were verified by its authors.

    **Features.** One sample per caption (tile x paradigm) or, with ``set="vqa"``, per question:

    * ``image``: ``(C, H, W)`` uint8 -- ``bands="rgb"`` (B4, B3, B2; TCI stretch), ``"b567"``
      (B5, B6, B7), ``"b81112"`` (B8, B11, B12) or ``"all"`` (the nine channels in that order);
      a label-only tile's image is its colour-rendered label map (``metadata["image_kind"] ==
      "label"``) whatever ``bands``;
    * ``label``: ``(H, W)`` uint8 ChatEarthNet class indices (0 background, 1-11 classes), or
      ``None`` (the release has no label maps);
    * ``caption`` (str), ``captions`` (every caption of the same tile in the split), ``id``,
      ``tile_id``, ``metadata`` (footprint, CRS, date, products, verification status ...);
      for ``vqa``: ``question`` and ``answer``.

    **Formats read.** ``hf`` (Parquet shards), ``wds`` (tar shards), ``llava``, ``coco``,
    ``stac`` and a workdir (``tiles.parquet`` + ``captions_verified.parquet``). The folder may
    be moved: every path in an export is relative.

    **Licence.** ESA WorldCover: CC BY 4.0 (© ESA WorldCover project / contains modified
    Copernicus Sentinel data processed by ESA WorldCover consortium); Sentinel-2: Copernicus
    data terms; ChatEarthNet release: CC BY 4.0. Cite the ChatEarthNet paper.

    Args:
        root: export folder (with ``manifest.json``) or workdir (with ``tiles.parquet``).
        split: ``train``, ``val`` or ``test``.
        bands: band group(s) of ``image`` (:data:`BANDS`).
        set: ``captions`` (default), ``vqa`` or ``captions_<variant>`` where exported.

    Raises:
        DatasetNotFoundError: ``root`` is neither an export nor a workdir, or the split/set
            is not in it (the message says what is there and how to make it).

    Use with PyTorch: ``DataLoader(CaptionDataset(root, "train"), batch_size=None)`` or with a
    ``collate_fn`` that stacks ``image``; ``cen`` never imports torch.
    """

    def __init__(self, root: str | Path, split: str = "train", bands: str = "rgb", set: str = "captions") -> None:
        if bands not in BANDS:
            raise ValueError(f"bands must be one of {', '.join(BANDS)}, got {bands!r}")
        self.root = Path(root)
        self.split, self.bands, self.set = split, bands, set
        self._groups = ("rgb", "b567", "b81112") if bands == "all" else (bands,)
        manifest = read_manifest(self.root) if self.root.is_dir() else None
        if manifest is not None:
            self.format = manifest["format"]
        elif (self.root / "tiles.parquet").exists():
            self.format = "workdir"
        else:
            raise DatasetNotFoundError(
                f"{self.root}: no cen export (manifest.json) and no workdir (tiles.parquet) here; make one with "
                f"`cen export WORKDIR {self.root} --format hf` (or llava, coco, wds, stac), or point at a built workdir")
        self._cache: dict[Any, Any] = {}
        self._groups_cache: dict[tuple, Any] = {}
        rows = getattr(self, f"_index_{self.format}")()
        if not rows:
            raise DatasetNotFoundError(f"{self.root}: no {set!r} samples in split {split!r} of this {self.format} "
                                       f"export (its manifest lists {manifest.get('counts') if manifest else 'n/a'})")
        self._rows = rows
        by_tile: dict[str, list[str]] = {}
        for r in rows:
            by_tile.setdefault(r["tile_id"], []).append(r["text"])
        self._by_tile = by_tile

    # --- index builders: each returns [{id, tile_id, text, question?, metadata, refs: {kind: ref}}] ----
    def _file(self, rel: str | None) -> tuple | None:
        return None if not rel else ("file", self.root / rel)

    def _index_workdir(self) -> list[dict]:
        from cen.export.samples import metadata, workdir_samples

        samples = workdir_samples(self.root, images="all", splits=[self.split])
        frame = samples.sets.get(self.set)
        if frame is None:
            return []
        out = []
        for _, row in frame.iterrows():
            refs = {k: ("file", Path(row[f"_{k}"])) for k in ("rgb", "b567", "b81112") if isinstance(row[f"_{k}"], str)}
            refs["image"] = ("file", Path(row["_image"]))
            if isinstance(row["_label"], str):
                refs["label"] = ("file", Path(row["_label"]))
            out.append({"id": row["id"], "tile_id": row["tile_id"], "text": row.get("answer") if self.set == "vqa"
                        else row["caption"], "question": row.get("question"), "metadata": metadata(row, exclude=(
                            "id", "caption")), "refs": refs})
        return out

    def _index_llava(self) -> list[dict]:
        path = self.root / f"{self.set}_{self.split}.json"
        if not path.exists():
            return []
        out = []
        for r in json.loads(path.read_text(encoding="utf-8")):
            refs = {k: self._file(v) for k, v in (r.get("images") or {}).items()}
            refs["image"] = self._file(r.get("image"))
            if r.get("label"):
                refs["label"] = self._file(r["label"])
            human, gpt = r["conversations"][0]["value"], r["conversations"][1]["value"]
            out.append({"id": r["id"], "tile_id": r["tile_id"], "text": gpt,
                        "question": human.removeprefix("<image>\n") if self.set == "vqa" else None,
                        "metadata": r.get("metadata", {}), "refs": {k: v for k, v in refs.items() if v}})
        return out

    def _index_coco(self) -> list[dict]:
        path = self.root / "annotations" / f"{self.set}_{self.split}.json"
        if not path.exists():
            return []
        doc = json.loads(path.read_text(encoding="utf-8"))
        images = {im["id"]: im for im in doc["images"]}
        out = []
        for ann in doc["annotations"]:
            im = images[ann["image_id"]]
            refs = {k: self._file(v) for k, v in (im.get("band_images") or {}).items()}
            refs["image"] = self._file(im["file_name"]) if (self.root / im["file_name"]).exists() else None
            if im.get("label"):
                refs["label"] = self._file(im["label"])
            meta = {k: v for k, v in im.items() if k not in ("id", "file_name", "band_images", "label")}
            meta.update(paradigm=ann.get("paradigm"), verification_status=ann.get("verification_status"))
            out.append({"id": ann["sample_id"], "tile_id": im["tile_id"], "text": ann["caption"], "metadata": meta,
                        "refs": {k: v for k, v in refs.items() if v}})
        return out

    def _index_hf(self) -> list[dict]:
        import pyarrow.parquet as pq

        folder = "data" if self.set == "captions" else self.set
        files = sorted((self.root / folder).glob(f"{self.split}-*.parquet"))
        out = []
        for f in files:
            pf = pq.ParquetFile(f)
            image_cols = [c for c in pf.schema_arrow.names if c == "image" or c == "label" or c.startswith("image_")]
            meta = pf.read(columns=[c for c in pf.schema_arrow.names if c not in image_cols]).to_pylist()
            for i, m in enumerate(meta):
                refs = {c: ("parquet", f, i, c) for c in image_cols}
                refs = {("image" if c == "image" else c.removeprefix("image_")): r for c, r in refs.items()}
                text = m.pop("answer", None) if self.set == "vqa" else m.pop("caption")
                out.append({"id": m.pop("id"), "tile_id": m["tile_id"], "text": text, "question": m.pop("question", None),
                            "metadata": m, "refs": refs})
        return out

    def _index_wds(self) -> list[dict]:
        out = []
        for f in sorted(self.root.glob(f"{self.set}-{self.split}-*.tar")):
            samples: dict[str, dict[str, tuple[int, int]]] = {}
            with tarfile.open(f) as tar:
                for m in tar:
                    if m.isfile():
                        key, _, ext = m.name.partition(".")
                        samples.setdefault(key, {})[ext] = (m.offset_data, m.size)
            with open(f, "rb") as fh:
                def member(offset_size):
                    fh.seek(offset_size[0])
                    return fh.read(offset_size[1])

                for key, exts in samples.items():
                    meta = json.loads(member(exts["json"]))
                    refs = {"image": ("tar", f, *exts["png"])} if "png" in exts else {}
                    if "label.png" in exts:
                        refs["label"] = ("tar", f, *exts["label.png"])
                    for g in ("b567", "b81112"):
                        if f"{g}.png" in exts:
                            refs[g] = ("tar", f, *exts[f"{g}.png"])
                    question = member(exts["question.txt"]).decode() if "question.txt" in exts else None
                    out.append({"id": key, "tile_id": meta["tile_id"], "text": member(exts["txt"]).decode(),
                                "question": question, "metadata": meta, "refs": refs})
        return out

    def _index_stac(self) -> list[dict]:
        import pystac

        if self.set != "captions":
            return []
        catalog = pystac.Catalog.from_file(str(self.root / "catalog.json"))
        out = []
        for item in catalog.get_items(recursive=True):
            if item.properties.get("cen:split") != self.split:
                continue
            refs = {}
            for key, asset in item.assets.items():
                path = Path(asset.get_absolute_href())
                if key == "image":
                    refs["image"] = ("file", path)
                elif key == "label_png":
                    refs["label"] = ("file", path)
                elif key in ("b567", "b81112"):
                    refs[key] = ("file", path)
            meta = {k.removeprefix("cen:"): v for k, v in item.properties.items() if k != "cen:captions"}
            tile_id = item.properties.get("cen:tile_id", item.id)
            meta.update(tile_id=tile_id, bbox=item.bbox)
            for cap in item.properties.get("cen:captions", []):
                out.append({"id": cap["id"], "tile_id": tile_id, "text": cap["text"], "refs": refs,
                            "metadata": {**meta, "paradigm": cap.get("paradigm"),
                                         "verification_status": cap.get("verification_status")}})
        return out

    # --- loading -------------------------------------------------------------------------
    def _bytes(self, ref: tuple) -> bytes:
        kind = ref[0]
        if kind == "file":
            if not Path(ref[1]).exists():
                raise DatasetNotFoundError(f"{ref[1]}: file listed by the export is missing (re-run the export)")
            return Path(ref[1]).read_bytes()
        if kind == "tar":
            with open(ref[1], "rb") as fh:
                fh.seek(ref[2])
                return fh.read(ref[3])
        import bisect

        import pyarrow.parquet as pq

        _, path, row, col = ref
        if path not in self._cache:
            pf = pq.ParquetFile(path)
            starts, total = [], 0
            for g in range(pf.metadata.num_row_groups):
                starts.append(total)
                total += pf.metadata.row_group(g).num_rows
            self._cache[path] = (pf, starts)
        pf, starts = self._cache[path]
        group = bisect.bisect_right(starts, row) - 1
        key = (path, group, col)
        if key not in self._groups_cache:
            if len(self._groups_cache) >= 8:  # a few row groups (64 rows each) in memory, never a whole shard
                self._groups_cache.pop(next(iter(self._groups_cache)))
            self._groups_cache[key] = pf.read_row_group(group, columns=[col]).column(col)
        value = self._groups_cache[key][row - starts[group]].as_py()
        return None if value is None else value["bytes"]

    @staticmethod
    def _decode(data: bytes) -> np.ndarray:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from cen import landcover

        r = self._rows[index]
        refs = r["refs"]
        kind = r["metadata"].get("image_kind")
        if kind == "label":
            wanted = [refs.get("image")]
        else:
            wanted = [refs.get(g) or (refs.get("image") if g == (kind or "rgb") else None) for g in self._groups]
        image = None
        if "image" in refs:
            if any(w is None for w in wanted):
                g = self._groups[[w is None for w in wanted].index(True)]
                raise DatasetNotFoundError(f"{self.root}: sample {r['id']} has no {g} image in this export "
                                           f"(export with --images {g} or all)")
            arrays = [self._decode(self._bytes(w)) for w in wanted]
            image = np.concatenate([a.transpose(2, 0, 1) for a in arrays])
        label = None
        if "label" in refs:
            data = self._bytes(refs["label"])
            if data is not None:
                label = landcover.colour_to_indices(self._decode(data))
        sample = {"image": image, "label": label, "caption": r["text"], "captions": list(self._by_tile[r["tile_id"]]),
                  "id": r["id"], "tile_id": r["tile_id"], "metadata": dict(r["metadata"])}
        if self.set == "vqa":
            sample["question"], sample["answer"] = r.get("question"), r["text"]
        return sample

    def plot(self, sample: dict[str, Any], show_titles: bool = True, suptitle: str | None = None, width: int = 60):
        """The sample's image (first three channels), its label map (when there is one) and its
        caption, wrapped to ``width`` characters. Returns the matplotlib Figure."""
        import textwrap

        import matplotlib.pyplot as plt

        from cen import landcover

        panels = [("image", sample["image"][:3].transpose(1, 2, 0))] if sample.get("image") is not None else []
        if sample.get("label") is not None:
            panels.append(("label", landcover.indices_to_colour(sample["label"])))
        fig, axes = plt.subplots(1, len(panels) + 1, figsize=(3.2 * (len(panels) + 1), 3.6), squeeze=False)
        for ax, (name, arr) in zip(axes[0], panels):
            ax.imshow(arr)
            ax.axis("off")
            if show_titles:
                ax.set_title(f"{name} ({sample['metadata'].get('image_kind', self.bands)})" if name == "image" else name,
                             fontsize=9)
        text = sample["caption"] if self.set != "vqa" else f"Q: {sample['question']}\nA: {sample['answer']}"
        axes[0][-1].text(0, 1, textwrap.fill(str(text), width), va="top", fontsize=7, wrap=True)
        axes[0][-1].axis("off")
        if suptitle or show_titles:
            fig.suptitle(suptitle or sample["id"], fontsize=9)
        fig.tight_layout()
        return fig

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for DataLoader workers: open files and cached row groups are left behind."""
        state = dict(self.__dict__)
        state["_cache"], state["_groups_cache"] = {}, {}
        return state

    def __repr__(self) -> str:
        return f"CaptionDataset({str(self.root)!r}, split={self.split!r}, bands={self.bands!r}, set={self.set!r}): " \
               f"{len(self)} samples from a {self.format} export"


def load_all(root: str | Path, splits: Sequence[str] = ("train", "val", "test"), **kwargs) -> dict[str, CaptionDataset]:
    """One :class:`CaptionDataset` per split that the export holds."""
    out = {}
    for s in splits:
        try:
            out[s] = CaptionDataset(root, s, **kwargs)
        except DatasetNotFoundError:
            continue
    return out
