"""The words that travel with an export: the Hugging Face dataset card (README.md with YAML front
matter) and the Croissant metadata (``croissant.json``), both made from the export itself.

Licence and attribution follow the sources: ESA WorldCover labels are CC BY 4.0 (© ESA
WorldCover project / contains modified Copernicus Sentinel data processed by ESA WorldCover
consortium); Sentinel-2 images are modified Copernicus Sentinel data (free, full and open
access under the Copernicus data terms, attribution required); the ChatEarthNet release is CC
BY 4.0. Captions made by a user's run carry the terms of the model that wrote them.
"""

from __future__ import annotations

from typing import Callable, Mapping

import yaml

from cen.export.base import describe_set
from cen.export.samples import Samples

CHATEARTHNET_CITATION = """@article{yuan2025chatearthnet,
  title   = {ChatEarthNet: a global-scale image--text dataset empowering vision--language geo-foundation models},
  author  = {Yuan, Zhenghang and Xiong, Zhitong and Mou, Lichao and Zhu, Xiao Xiang},
  journal = {Earth System Science Data},
  volume  = {17},
  pages   = {1245--1263},
  year    = {2025},
  doi     = {10.5194/essd-17-1245-2025}
}"""
CHATEARTHNET_URL = "https://doi.org/10.5194/essd-17-1245-2025"

ATTRIBUTION = {
    "worldcover": ("ESA WorldCover 10 m (CC BY 4.0): © ESA WorldCover project / Contains modified Copernicus "
                   "Sentinel data processed by ESA WorldCover consortium. Zanaga et al. 2021, "
                   "doi:10.5281/zenodo.5571936 (v100); Zanaga et al. 2022, doi:10.5281/zenodo.7254221 (v200)."),
    "sentinel2": ("Contains modified Copernicus Sentinel data (Sentinel-2 MSI), free, full and open access under "
                  "the Copernicus data terms."),
    "chatearthnet": ("ChatEarthNet (Yuan, Xiong, Mou, Zhu, ESSD 2025; Zenodo record 11003436, CC BY 4.0): "
                     "captions and Sentinel-2 images of the release."),
}
"""One attribution line per source an export can hold."""


def _size_category(n: int) -> str:
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return name
    return "1M<n<10M"


def sources_of(samples: Samples) -> list[str]:
    """Which :data:`ATTRIBUTION` keys apply to an export."""
    if samples.source == "release":
        return ["chatearthnet", "sentinel2"]
    frames = list(samples.sets.values())
    kinds = set().union(*(set(f["image_kind"].dropna()) for f in frames)) if frames else set()
    out = []
    products = set().union(*(set(f["label_product"].dropna()) for f in frames if "label_product" in f.columns))
    if any("worldcover" in str(p).lower() for p in products) or "label" in kinds:
        out.append("worldcover")
    if kinds & {"rgb", "b567", "b81112"} or any(f.get("s2_item_id") is not None and f["s2_item_id"].notna().any()
                                               for f in frames if "s2_item_id" in f.columns):
        out.append("sentinel2")
    return out


def _image_kind_note(samples: Samples) -> list[str]:
    """A sentence on what the ``image`` column shows, when some samples show their label map."""
    frame = samples.sets.get("captions")
    if frame is None or "image_kind" not in frame.columns:
        return []
    kinds = frame["image_kind"].value_counts()
    n_label = int(kinds.get("label", 0))
    if not n_label:
        return []
    return [f"In this export {n_label} of {len(frame)} captions show the tile's colour-rendered land-cover map as "
            "`image` (`image_kind = \"label\"`: the tile has no Sentinel-2 image here; the map is what "
            "ChatEarthNet's GPT-4V was shown).", ""]


def dataset_card(samples: Samples, counts: Mapping[str, Mapping[str, int]], sizes: Mapping[str, int],
                 config_dir: Callable[[str], str]) -> str:
    """README.md: YAML front matter (licence, task categories, configs with data_files, splits with
    sizes, size category) and a body with the columns, attribution and citation."""
    configs, infos = [], []
    for set_name, per in counts.items():
        folder = config_dir(set_name)
        name = "default" if set_name == "captions" else set_name
        entry = {"config_name": name, "data_files": [{"split": s, "path": f"{folder}/{s}-*"} for s in per]}
        if name == "default":
            entry["default"] = True
        configs.append(entry)
        split_bytes = {s: sum(b for rel, b in sizes.items() if rel.startswith(f"{folder}/{s}-")) for s in per}
        infos.append({"config_name": name, "splits": [{"name": s, "num_bytes": int(split_bytes[s]),
                                                      "num_examples": int(n)} for s, n in per.items()],
                      "download_size": int(sum(split_bytes.values())), "dataset_size": int(sum(split_bytes.values()))})
    total = sum(n for per in counts.values() for n in per.values())
    tasks = ["image-to-text"] + (["visual-question-answering"] if "vqa" in counts else [])
    front = {
        "license": "cc-by-4.0", "language": ["en"], "task_categories": tasks,
        "tags": ["remote-sensing", "earth-observation", "sentinel-2", "land-cover", "esa-worldcover",
                 "image-captioning", "chatearthnet"],
        "pretty_name": "ChatEarthNet release (cen export)" if samples.source == "release" else
        "ChatEarthNet-style captions (cen export)",
        "size_categories": [_size_category(total)], "configs": configs, "dataset_info": infos,
    }
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {front['pretty_name']}", "",
             "Image-text pairs of Sentinel-2 tiles and ESA WorldCover land cover in the layout of ChatEarthNet, "
             "exported by `cen export` (the ChatEarthNet toolkit). "
             + ("Converted from the published ChatEarthNet release; footprints decoded from the zoom-13 tile grid."
                if samples.source == "release" else "Built by a `cen` run: only captions accepted by verification "
                "unless the export says otherwise (`verification_status`)."), "",
             *_image_kind_note(samples),
             "## Configs and splits", "", "| config | what | " + " | ".join(("train", "val", "test")) + " |",
             "|---|---|---|---|---|"]
    for set_name, per in counts.items():
        name = "default" if set_name == "captions" else set_name
        lines.append(f"| `{name}` | {describe_set(set_name)} | " + " | ".join(str(per.get(s, 0)) for s in
                                                                             ("train", "val", "test")) + " |")
    lines += ["", "## Columns", "",
              "`id` (tile id + `__` + paradigm or question id), `image` (PNG: the band group asked for, or the "
              "colour-rendered label map when `image_kind` is `label`), `label` (ChatEarthNet-colour label map, "
              "null without one), `caption` (or `question` / `answer`), `tile_id`, `split`, the footprint "
              "(`geometry` WKT and `bbox`, EPSG:4326), `crs`, `transform`, `datetime`, products and provenance.",
              "", "```python", "import datasets", "ds = datasets.load_dataset(\"parquet\", data_dir=\"PATH/TO/THIS/FOLDER\")",
              "```", "", "## Licence and attribution", "",
              "Licence: CC BY 4.0 for the labels and the release; Sentinel-2 data under the Copernicus terms."]
    lines += [f"- {ATTRIBUTION[k]}" for k in sources_of(samples)]
    lines += ["", "## Citation", "", "```bibtex", CHATEARTHNET_CITATION, "```", ""]
    return "\n".join(lines)


CROISSANT_CONTEXT = {
    "@language": "en", "@vocab": "https://schema.org/", "citeAs": "cr:citeAs", "column": "cr:column",
    "conformsTo": "dct:conformsTo", "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"}, "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/", "equivalentProperty": "cr:equivalentProperty", "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract",
    "field": "cr:field", "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject", "fileSet": "cr:fileSet",
    "format": "cr:format", "includes": "cr:includes", "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath",
    "key": "cr:key", "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path", "recordSet": "cr:recordSet",
    "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated", "replace": "cr:replace", "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/", "separator": "cr:separator", "source": "cr:source", "subField": "cr:subField",
    "transform": "cr:transform",
}
"""The Croissant 1.0 JSON-LD context (the vocabulary of the specification)."""

_DATA_TYPES = {"string": "sc:Text", "large_string": "sc:Text", "double": "sc:Float", "float": "sc:Float",
               "int64": "sc:Integer", "int32": "sc:Integer", "bool": "sc:Boolean"}


def croissant(samples: Samples, counts: Mapping[str, Mapping[str, int]], writer, config_dir: Callable[[str], str]) -> dict:
    """Croissant 1.0 JSON-LD: one FileSet and one RecordSet per config over its Parquet shards
    (scalar columns as fields, ``image`` as an ``sc:ImageObject`` from the ``bytes`` of its struct)."""
    import pyarrow.parquet as pq

    distribution, record_sets = [], []
    for set_name in counts:
        folder = config_dir(set_name)
        shard = next((rel for rel in writer.files if rel.startswith(f"{folder}/") and rel.endswith(".parquet")), None)
        if shard is None:
            continue
        schema = pq.read_schema(writer.path(shard))
        fs_id = f"parquet-{folder}"
        distribution.append({"@type": "cr:FileSet", "@id": fs_id, "name": fs_id,
                             "description": f"Parquet shards of {describe_set(set_name)}",
                             "encodingFormat": "application/x-parquet", "includes": f"{folder}/*.parquet"})
        rs = "default" if set_name == "captions" else set_name
        fields = []
        for f in schema:
            if f.name == "image":
                dtype, extra = "sc:ImageObject", {"transform": {"jsonPath": "bytes"}}
            else:
                dtype, extra = _DATA_TYPES.get(str(f.type)), {}
                if dtype is None:
                    continue
            fields.append({"@type": "cr:Field", "@id": f"{rs}/{f.name}", "name": f.name, "dataType": dtype,
                           "source": {"fileSet": {"@id": fs_id}, "extract": {"column": f.name}, **extra}})
        record_sets.append({"@type": "cr:RecordSet", "@id": rs, "name": rs, "description": describe_set(set_name),
                            "key": {"@id": f"{rs}/id"}, "field": fields})
    return {
        "@context": dict(CROISSANT_CONTEXT), "@type": "sc:Dataset", "conformsTo": "http://mlcommons.org/croissant/1.0",
        "name": "chatearthnet-cen-export", "description": "ChatEarthNet-style image-text pairs exported by cen "
        "(Sentinel-2 tiles, ESA WorldCover land cover, captions).",
        "license": "https://creativecommons.org/licenses/by/4.0/", "url": CHATEARTHNET_URL,
        "citeAs": CHATEARTHNET_CITATION, "version": "1.0.0",
        "creator": {"@type": "sc:Organization", "name": "cen (ChatEarthNet toolkit)"},
        "keywords": ["remote sensing", "Sentinel-2", "land cover", "image captioning"],
        "distribution": distribution, "recordSet": record_sets,
    }
