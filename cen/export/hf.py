"""Hugging Face dataset folder: Parquet shards with the images inside, a dataset card, Croissant.

Layout::

    OUT/data/{split}-{i:05d}-of-{n:05d}.parquet         the captions (config ``default``)
    OUT/{set}/{split}-{i:05d}-of-{n:05d}.parquet        extra configs (``vqa``, ``captions_<variant>``)
    OUT/README.md                                       dataset card (YAML front matter: configs, splits, sizes)
    OUT/croissant.json                                  Croissant 1.0 metadata of the same files

Columns: ``id``, ``image`` (Hugging Face ``Image`` feature stored as ``{bytes, path}``: the
PNG bytes as exported by the pipeline), ``label`` (the ChatEarthNet-colour label map, same
feature, null without one), ``image_b567`` / ``image_b81112`` with ``--images all``, the text
(``caption``; ``question`` / ``answer`` for ``vqa``) and every metadata column of the sample
(tile footprint as WKT and bbox, CRS, transform, date, products, verification status …).
The ``huggingface`` schema metadata declares the image columns, so
``datasets.load_dataset("parquet", data_dir=OUT)`` decodes them offline; other columns keep
their Arrow types. Shards hold ``shard_size`` rows in row groups of :data:`ROW_GROUP` rows, so
a writer holds at most one row group of images in memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from cen.export import card
from cen.export.base import extra_kinds, has_label, iter_split, records
from cen.export.samples import Samples, public_columns, safe_key
from cen.export.writer import ExportWriter, Fingerprint, SourceFiles, iter_chunks, n_shards

ROW_GROUP = 64
"""Rows per Parquet row group (the unit a reader decodes and a writer holds in memory)."""

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
"""Arrow type of the Hugging Face ``Image`` feature."""



def config_dir(set_name: str) -> str:
    """``data`` for the captions (the default config), the set name for the others."""
    return "data" if set_name == "captions" else set_name


def shard_name(set_name: str, split: str, i: int, n: int) -> str:
    return f"{config_dir(set_name)}/{split}-{i:05d}-of-{n:05d}.parquet"


def image_columns(kinds: tuple[str, ...]) -> list[str]:
    """Image columns of a shard: ``image``, ``label`` and one per extra band group."""
    return ["image", "label", *[f"image_{k}" for k in kinds[1:]]]


def _column_array(values: list) -> pa.Array:
    try:
        arr = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = pa.array([None if v is None else (v if isinstance(v, str) else json.dumps(v)) for v in values])
    if pa.types.is_null(arr.type):
        arr = arr.cast(pa.string())
    return arr


def metadata_table(frame) -> pa.Table:
    """The non-image columns of a set as one Arrow table (one schema for every shard)."""
    cols = [c for c in public_columns(frame)]
    return pa.table({c: _column_array(frame[c].tolist()) for c in cols})


def schema_for(meta: pa.Schema, kinds: tuple[str, ...]) -> pa.Schema:
    fields = [meta.field("id")] + [pa.field(c, IMAGE_TYPE) for c in image_columns(kinds)]
    fields += [f for f in meta if f.name != "id"]
    features = {c: {"_type": "Image"} for c in image_columns(kinds)}
    return pa.schema(fields, metadata={b"huggingface": json.dumps({"info": {"features": features}}).encode()})


def _files_of(row, kinds: tuple[str, ...]) -> dict[str, str | None]:
    out = {"image": row["_image"] if isinstance(row.get("_image"), str) else None,
           "label": row["_label"] if has_label(row) else None}
    extra = extra_kinds(row, kinds)
    for k in kinds[1:]:
        out[f"image_{k}"] = extra.get(k)
    return out


def write(samples: Samples, writer: ExportWriter, *, shard_size: int = 1000, progress: bool = True,
          **_: object) -> dict[str, dict[str, int]]:
    """Write every set as Parquet shards plus README.md and croissant.json; returns rows per set and split."""
    counts: dict[str, dict[str, int]] = {}
    kinds = samples.kinds

    sources = SourceFiles(samples.stamps)
    digest, read = sources.stamp, sources.read

    for set_name, frame in samples.sets.items():
        counts[set_name] = {}
        for split, rows in iter_split(frame):
            rows = rows.reset_index(drop=True)
            meta = metadata_table(rows)
            schema = schema_for(meta.schema, kinds)
            n = n_shards(len(rows), shard_size)
            bar = tqdm(total=len(rows), desc=f"hf {set_name} {split}", unit="row", disable=not progress, leave=False)
            for i, start, stop in iter_chunks(len(rows), shard_size):
                part = rows.iloc[start:stop]
                files = [_files_of(r, kinds) for r in records(part)]
                chunk = meta.slice(start, stop - start)

                def fingerprint(chunk=chunk, files=files, schema=schema) -> str:
                    fp = Fingerprint(schema.to_string())
                    sink = pa.BufferOutputStream()
                    with pa.ipc.new_stream(sink, chunk.schema) as ipc:
                        ipc.write_table(chunk)
                    fp.add(sink.getvalue().to_pybytes())
                    fp.add("\n".join(f"{col}={digest(path) if path else '-'}" for row_files in files
                                      for col, path in row_files.items()))
                    return fp.hexdigest()

                def write_shard(tmp: Path, chunk=chunk, files=files, part=part, schema=schema) -> None:
                    images = image_columns(kinds)
                    others = [f.name for f in schema if f.name not in images]
                    # PNG bytes are compressed already: stored as they are, no dictionary tried on them
                    with pq.ParquetWriter(tmp, schema, compression={**{c: "zstd" for c in others},
                                                                    **{c: "none" for c in images}},
                                          use_dictionary=others) as pw:
                        for g in range(0, len(files), ROW_GROUP):
                            group = files[g:g + ROW_GROUP]
                            tile_ids = part["tile_id"].iloc[g:g + ROW_GROUP].tolist()
                            columns = {}
                            for col in image_columns(kinds):
                                values = []
                                for t, row_files in zip(tile_ids, group):
                                    p = row_files[col]
                                    values.append(None if p is None else {
                                        "bytes": read(p), "path": f"{safe_key(t)}_{col}.png"})
                                columns[col] = pa.array(values, type=IMAGE_TYPE)
                            sub = chunk.slice(g, len(group))
                            arrays = [sub.column("id")] + [columns[c] for c in image_columns(kinds)]
                            arrays += [sub.column(f.name) for f in schema if f.name not in columns and f.name != "id"]
                            pw.write_table(pa.Table.from_arrays(arrays, schema=schema))
                            bar.update(len(group))

                if not writer.shard(shard_name(set_name, split, i, n), fingerprint, write_shard):
                    bar.update(len(files))
            bar.close()
            counts[set_name][split] = len(rows)
    sizes = {rel: entry["bytes"] for rel, entry in writer.files.items() if rel.endswith(".parquet")}
    writer.put_text("README.md", card.dataset_card(samples, counts, sizes, config_dir))
    writer.put_json("croissant.json", card.croissant(samples, counts, writer, config_dir))
    return counts
