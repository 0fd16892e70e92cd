"""WebDataset tar shards: ``{set}-{split}-{i:06d}.tar``, ``shard_size`` samples each.

Files of one sample share its key (the sample id: letters, digits, ``_`` and ``-``, never a
dot, so WebDataset's "key = up to the first dot of the basename" rule holds)::

    {key}.png          the image (band group asked for, or the label map for label-only tiles)
    {key}.txt          the caption (for ``vqa``: the answer; the question is {key}.question.txt)
    {key}.json         every metadata field of the sample
    {key}.label.png    the ChatEarthNet-colour label map (when the tile has one)
    {key}.b567.png, {key}.b81112.png   with ``--images all``
    {key}.tif          the nine-band multispectral GeoTIFF (``--multispectral``)

Members are written with fixed owner, mode and time, so an unchanged shard has the same bytes;
``webdataset.WebDataset("OUT/captions-train-{000000..000003}.tar")`` iterates them (the
manifest lists the shard names).
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from tqdm.auto import tqdm

from cen.export.base import extra_kinds, has_label, iter_split, meta_json, records
from cen.export.writer import ExportWriter, Fingerprint, SourceFiles, iter_chunks, n_shards
from cen.export.samples import Samples

MTIME = 946684800
"""Member time of every tar entry (2000-01-01T00:00:00Z): fixed, so shards are reproducible."""


def shard_name(set_name: str, split: str, i: int) -> str:
    return f"{set_name}-{split}-{i:06d}.tar"


def shard_pattern(set_name: str, split: str, n: int) -> str:
    """The brace pattern WebDataset expands to the ``n`` shards of a set and split."""
    return f"{set_name}-{split}-{{000000..{n - 1:06d}}}.tar" if n > 1 else shard_name(set_name, split, 0)


def members(row, set_name: str, kinds: tuple[str, ...], multispectral: bool) -> list[tuple[str, str | bytes]]:
    """``(member name, file path or bytes)`` of one sample, in tar order."""
    key = row["id"]
    out: list[tuple[str, str | bytes]] = []
    if isinstance(row.get("_image"), str):
        out.append((f"{key}.png", row["_image"]))
    if set_name == "vqa":
        out.append((f"{key}.question.txt", str(row["question"]).encode()))
        out.append((f"{key}.txt", str(row["answer"]).encode()))
    else:
        out.append((f"{key}.txt", str(row["caption"]).encode()))
    out.append((f"{key}.json", meta_json(row).encode()))
    if has_label(row):
        out.append((f"{key}.label.png", row["_label"]))
    for kind, path in extra_kinds(row, kinds).items():
        out.append((f"{key}.{kind}.png", path))
    if multispectral and isinstance(row.get("_image_tif"), str):
        out.append((f"{key}.tif", row["_image_tif"]))
    return out


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = len(data), MTIME, 0o644, 0, 0, "", ""
    tar.addfile(info, io.BytesIO(data))


def write(samples: Samples, writer: ExportWriter, *, shard_size: int = 1000, progress: bool = True,
          multispectral: bool = False, **_: object) -> dict[str, dict[str, int]]:
    """Write every set as tar shards; returns samples per set and split."""
    counts: dict[str, dict[str, int]] = {}
    patterns: dict[str, str] = {}

    sources = SourceFiles(samples.stamps)
    digest, read = sources.stamp, sources.read

    for set_name, frame in samples.sets.items():
        counts[set_name] = {}
        for split, rows in iter_split(frame):
            n = n_shards(len(rows), shard_size)
            bar = tqdm(total=len(rows), desc=f"wds {set_name} {split}", unit="sample", disable=not progress, leave=False)
            for i, start, stop in iter_chunks(len(rows), shard_size):
                part = [members(r, set_name, samples.kinds, multispectral) for r in records(rows.iloc[start:stop])]

                def fingerprint(part=part) -> str:
                    fp = Fingerprint("wds-1")
                    for sample in part:
                        fp.add(b"\0".join(name.encode() + b"=" + (src if isinstance(src, bytes) else digest(src).encode())
                                          for name, src in sample))
                    return fp.hexdigest()

                def write_shard(tmp: Path, part=part) -> None:
                    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
                        for sample in part:
                            for name, src in sample:
                                _add(tar, name, src if isinstance(src, bytes) else read(src))
                            bar.update(1)

                if not writer.shard(shard_name(set_name, split, i), fingerprint, write_shard):
                    bar.update(len(part))
            bar.close()
            counts[set_name][split] = len(rows)
            patterns[f"{set_name}/{split}"] = shard_pattern(set_name, split, n)
    writer.put_json("shards.json", {"shards": patterns, "counts": counts})
    return counts
