"""LLaVA / GeoChat conversation JSON: one list per set and split, images as PNG beside it.

Layout (``image`` paths are relative to the export folder, LLaVA's ``--image_folder``)::

    OUT/captions_train.json       [{"id", "image", "conversations": [human, gpt], ...}, ...]
    OUT/captions_<variant>_train.json, OUT/vqa_train.json   (when those sets exist)
    OUT/images/rgb/{tile}.png     (or images/label/{tile}.png for label-only tiles)
    OUT/labels/{tile}.png

A record: ``{"id": "{tile}__{paradigm}", "image": "images/rgb/{tile}.png", "conversations":
[{"from": "human", "value": "<image>\\n{instruction}"}, {"from": "gpt", "value": caption}],
"tile_id", "paradigm", "split", "label", "metadata"}`` (LLaVA's loader reads ``image`` and
``conversations`` and ignores the rest). With ``--images all`` a record also names
``images`` (``{band group: path}``).

The instruction of a caption record is drawn from :data:`CAPTION_INSTRUCTIONS` by
:func:`instruction_for` — a hash of the seed and the sample id, so a record's instruction does
not change when other records are added or removed. A question record's human turn is the
question (with its lettered options for multiple choice), the answer the gpt turn.
"""

from __future__ import annotations

import hashlib

from tqdm.auto import tqdm

from cen.export.base import iter_split, json_list, records, row_metadata, write_tile_files
from cen.export.samples import Samples
from cen.export.writer import ExportWriter

CAPTION_INSTRUCTIONS: tuple[str, ...] = (
    "Describe the image in detail.",
    "Give a detailed description of the land cover in this image.",
    "Describe this remote sensing image, region by region.",
    "What land cover types does this image show, and where are they?",
    "Write a detailed caption for this satellite image.",
    "Describe the distribution of land cover types across this image.",
    "Summarize the land cover in each part of this image.",
    "Provide a thorough description of this image, including the spatial layout of its land cover.",
)
"""The caption instructions a human turn is drawn from (seeded; see :func:`instruction_for`)."""

IMAGE_TOKEN = "<image>"


def instruction_for(sample_id: str, seed: int = 0, pool: tuple[str, ...] = CAPTION_INSTRUCTIONS) -> str:
    """The instruction of one sample: ``pool[sha256(f"{seed}|{sample_id}") mod len(pool)]``."""
    digest = hashlib.sha256(f"{seed}|{sample_id}".encode()).digest()
    return pool[int.from_bytes(digest[:8], "big") % len(pool)]


def question_text(row) -> str:
    """A question as the human turn; multiple choice gets its lettered options unless the
    question already ends with them (``cen vqa`` writes an ``Options:`` line)."""
    text = str(row["question"])
    choices = row.get("choices")
    if row.get("format") == "multiple_choice" and isinstance(choices, list) and choices and "Options:" not in text:
        letters = "ABCDEFGHIJ"
        text += "\n" + "\n".join(f"{letters[i]}. {c}" for i, c in enumerate(choices))
    return text


def file_name(set_name: str, split: str) -> str:
    return f"{set_name}_{split}.json"


def write(samples: Samples, writer: ExportWriter, *, seed: int = 0, progress: bool = True,
          multispectral: bool = False, **_: object) -> dict[str, dict[str, int]]:
    """Write every set of ``samples`` (see the module docstring); returns rows per set and split."""
    counts: dict[str, dict[str, int]] = {}
    for set_name, frame in samples.sets.items():
        counts[set_name] = {}
        for split, rows in iter_split(frame):
            bar = tqdm(total=len(rows), desc=f"llava {set_name} {split}", unit="sample", disable=not progress,
                       leave=False)

            def conversations(rows=rows, bar=bar, set_name=set_name):
                for row in records(rows):
                    files = write_tile_files(writer, row, samples.kinds, multispectral=multispectral)
                    human = question_text(row) if set_name == "vqa" else instruction_for(row["id"], seed)
                    answer = str(row["answer"]) if set_name == "vqa" else str(row["caption"])
                    rec = {"id": row["id"]}
                    if files["image"] is not None:
                        rec["image"] = files["image"]
                        human = f"{IMAGE_TOKEN}\n{human}"
                    rec["conversations"] = [{"from": "human", "value": human}, {"from": "gpt", "value": answer}]
                    rec["tile_id"] = row["tile_id"]
                    if "paradigm" in row and isinstance(row["paradigm"], str):
                        rec["paradigm"] = row["paradigm"]
                    rec["split"] = split
                    if files["label"]:
                        rec["label"] = files["label"]
                    if len(files["images"]) > 1:
                        rec["images"] = files["images"]
                    if files["multispectral"]:
                        rec["multispectral"] = files["multispectral"]
                    rec["metadata"] = row_metadata(row, lean=True)
                    bar.update(1)
                    yield rec

            writer.put_stream(file_name(set_name, split), json_list(conversations()))
            bar.close()
            counts[set_name][split] = len(rows)
    return counts
