"""Baseline caption systems anyone can run offline, scored on the same split as any model.

The input is a :class:`BenchmarkData`: reference captions per tile, a train/test split, and, where
known, each tile's ``(6, 12)`` region counts (``stats.parquet``) and image path
(``tiles.parquet``). :func:`load_workdir` builds it from a pipeline run, :func:`load_release`
from ChatEarthNet release JSON files.

Systems (each returns a :class:`SystemRun` recording system, model id, prompt hash, split,
number of images and date):

- :func:`constant_baseline`: the one training caption that scores best on the training set
  (CIDEr-D of that caption as the candidate for every training image, document frequencies from
  the training references; candidates from a seeded pool of at most ``pool_size`` training
  captions, scored on at most ``max_images`` training images). Pure Python, no Java.
- :func:`nearest_neighbour_baseline`: each test tile gets the first reference caption of its
  nearest training tile, by ``"image"`` features (per band: mean, standard deviation, 10th, 50th
  and 90th percentile of the tile's GeoTIFF, z-scored over the training tiles; Euclidean) or,
  as an oracle that sees the labels, by ``"landcover"`` histograms (class shares of the whole tile
  and of the five regions; L1 distance).
- :func:`template_baseline`: the offline statistics-driven captioner of ``cen.generate.template``
  (an oracle: it reads the labels; an upper reference for label-faithful text).
- :func:`vlm_baseline`: any OpenAI-compatible chat endpoint with image input, given the RGB tile
  and :data:`VLM_PROMPT` (see its docstring).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from cen import metrics
from cen.tables import resolve_path

VLM_PROMPT = (
    "This is a Sentinel-2 satellite image tile (true colour, 10 m pixels, about 2.56 km across). "
    "Describe its land cover in one paragraph of about 100-150 words: which of these classes are "
    "present - tree, shrub, grass, crop, developed area, bare land, snow, water, wetland, mangroves, "
    "moss - roughly how much of the image each covers, and where they are (top left, top right, "
    "bottom left, bottom right, middle). Describe only what is visible; do not guess place names."
)
"""The prompt of the vision-language baseline (its sha256 is recorded as the run's prompt hash)."""


class BaselineError(ValueError):
    """The benchmark data cannot support a baseline (the message says what is missing)."""


@dataclass
class BenchmarkData:
    """References and side information of one benchmark.

    ``references``: tile id -> reference captions (every tile, train and test).
    ``train`` / ``test``: tile ids. ``counts``: tile id -> ``(6, 12)`` int64 region counts (or
    empty). ``images``: tile id -> image GeoTIFF path (or empty). ``label_paths``: tile id ->
    label GeoTIFF (for figures). ``source``: where the data came from; ``split``: name of the
    scored split; ``reference_source``: who wrote the references.
    """

    @property
    def n_test_references(self) -> int:
        """Reference captions of the test images (all of them, several per image when there are)."""
        return sum(len(self.references[k]) for k in self.test)

    references: dict[str, list[str]]
    train: list[str]
    test: list[str]
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)
    label_paths: dict[str, str] = field(default_factory=dict)
    source: str = ""
    split: str = "test"
    notes: list[str] = field(default_factory=list)
    reference_source: str = ""
    """Who wrote the references, e.g. "template captioner (template-2)" or "the release's ChatGPT-4V captions"."""
    references_from_template: bool = False
    """True when the references were written by cen's template captioner (n-gram scores are then inflated)."""

    @property
    def test_references(self) -> dict[str, list[str]]:
        return {k: self.references[k] for k in self.test}


@dataclass
class SystemRun:
    """Captions of one system on one split, with what is needed to cite the run."""

    system: str
    model: str
    candidates: dict[str, str]
    split: str
    prompt_hash: str | None = None
    oracle: bool = False
    date: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"))
    notes: str = ""

    @property
    def n_images(self) -> int:
        return len(self.candidates)

    def record(self) -> dict[str, Any]:
        """The row fields of this run (no captions)."""
        return {"system": self.system, "model": self.model, "prompt_hash": self.prompt_hash, "split": self.split,
                "n_images": self.n_images, "date": self.date, "oracle": self.oracle, "notes": self.notes}


def load_workdir(workdir: str | Path, *, paradigm: str | None = None, test_share: float = 0.5,
                 split_from_tiles: bool = True, generate_missing: bool = False) -> BenchmarkData:
    """Benchmark data of a pipeline run: ``captions.parquet`` (+ ``stats.parquet``, ``tiles.parquet``).

    References are the captions' ``accepted_text`` from ``captions_verified.parquet`` when it
    exists, else ``text`` of ``captions.parquet`` (rows with ``status`` other than ``ok`` are
    skipped), optionally of one ``paradigm``. The split is ``tiles.parquet``'s ``split`` column
    (``val`` counts as train) when it gives both a train and a test tile; otherwise a fixed hash
    of the tile id puts ``test_share`` of the tiles in test. ``generate_missing``: without a
    caption table, caption ``stats.parquet``'s tiles with the generation layer's offline
    ``template`` backend in memory (nothing is written) and say so in ``notes``.
    """
    workdir = Path(workdir)
    verified, plain = workdir / "captions_verified.parquet", workdir / "captions.parquet"
    if verified.exists():
        source, caps = verified, pd.read_parquet(verified)
        text_col = "accepted_text" if "accepted_text" in caps.columns else "text"
    elif plain.exists():
        source, caps, text_col = plain, pd.read_parquet(plain), "text"
    elif generate_missing and (workdir / "stats.parquet").exists():
        from cen.generate.runner import GenerateConfig, build_workdir_requests, generate

        result = generate(build_workdir_requests(workdir), GenerateConfig(backend="template", progress=False))
        source, caps, text_col = workdir / "stats.parquet", result.captions, "text"
    else:
        raise FileNotFoundError(f"{plain}: no caption table in {workdir} (run notebook 03 first)")
    for col in ("tile_id", text_col):
        if col not in caps.columns:
            raise KeyError(f"{source}: missing column {col!r}")
    if "status" in caps.columns:
        caps = caps[caps["status"].fillna("ok").isin(["ok", "accepted", "edited", "fixed", "cached"])]
    if paradigm is not None:
        if "paradigm" not in caps.columns:
            raise KeyError(f"{source}: missing column 'paradigm'")
        caps = caps[caps["paradigm"] == paradigm]
    caps = caps[caps[text_col].notna()]
    refs: dict[str, list[str]] = {}
    for tid, text in zip(caps["tile_id"].astype(str), caps[text_col]):
        refs.setdefault(tid, []).append(str(text))
    if not refs:
        raise BaselineError(f"{source}: no usable captions" + (f" of paradigm {paradigm!r}" if paradigm else ""))

    counts: dict[str, np.ndarray] = {}
    if (workdir / "stats.parquet").exists():
        from cen.stats import counts_from_table

        st = pd.read_parquet(workdir / "stats.parquet")  # only the count columns are needed here
        arr = counts_from_table(st, source=str(workdir / "stats.parquet"))
        counts = {str(t): arr[i] for i, t in enumerate(st["tile_id"]) if str(t) in refs}
    images: dict[str, str] = {}
    labels: dict[str, str] = {}
    split_of: dict[str, str] = {}
    if (workdir / "tiles.parquet").exists():
        tiles = pd.read_parquet(workdir / "tiles.parquet")
        for _, row in tiles.iterrows():
            tid = str(row["tile_id"])
            if tid not in refs:
                continue
            if isinstance(row.get("image_path"), str) and row.get("image_path"):
                images[tid] = str(resolve_path(row["image_path"], workdir))
            if isinstance(row.get("label_path"), str) and row.get("label_path"):
                labels[tid] = str(resolve_path(row["label_path"], workdir))
            if isinstance(row.get("split"), str):
                split_of[tid] = "test" if row["split"] == "test" else "train"
    ids = sorted(refs)
    notes = [] if source != workdir / "stats.parquet" else [
        "references made here by the offline template captioner (no captions.parquet in the workdir)"]
    if split_from_tiles and split_of and {"train", "test"} <= {split_of.get(t) for t in ids}:
        test = [t for t in ids if split_of.get(t) == "test"]
        notes.append(f"split from {workdir / 'tiles.parquet'}")
    else:
        from cen.tiling import assign_split

        test = [t for t in ids if assign_split(t, (("test", test_share), ("train", 1.0 - test_share))) == "test"]
        if not test or len(test) == len(ids):  # tiny sets: keep at least one tile on each side
            test = ids[: max(1, len(ids) // 2)]
        notes.append(f"split by a hash of the tile id ({test_share:.0%} test)")
    test_set = set(test)
    train = [t for t in ids if t not in test_set]
    if not train:
        raise BaselineError(f"{source}: every tile is in the test split; baselines need training tiles")
    by_template, writer = _reference_writer(caps, generated=source == workdir / "stats.parquet")
    return BenchmarkData(refs, train, test, counts, images, labels, str(source), "test", notes,
                         reference_source=writer, references_from_template=by_template)


def _reference_writer(caps: pd.DataFrame, *, generated: bool) -> tuple[bool, str]:
    """Whether a captions table was written by the template captioner, and a short description."""
    from cen.generate.template import TEMPLATE_CAPTIONER_VERSION

    if generated:
        return True, f"cen template captioner ({TEMPLATE_CAPTIONER_VERSION}, made here)"
    for col in ("backend", "model_returned"):
        if col in caps.columns and len(caps) and (caps[col].astype(str) == "template").all():
            versions = sorted(caps["template_version"].dropna().astype(str).unique()) if "template_version" in caps else []
            return True, f"cen template captioner ({', '.join(versions) or 'template'})"
    models = sorted(caps["model_returned"].dropna().astype(str).unique()) if "model_returned" in caps else []
    return False, ", ".join(models) if models else "captions of the workdir"


def load_release(test_json: str | Path, train_json: str | Path) -> BenchmarkData:
    """Benchmark data from ChatEarthNet release JSON files (``[{"image", "caption"}]``) of two splits."""
    test = metrics.read_references(test_json)
    train = metrics.read_references(train_json)
    overlap = sorted(set(test) & set(train))
    if overlap:
        raise BaselineError(f"{test_json} and {train_json} share {len(overlap)} images, first {overlap[:3]}")
    refs = {**train, **test}
    return BenchmarkData(refs, list(train), list(test), source=f"{test_json} (train: {train_json})",
                         split=Path(test_json).stem, reference_source=f"ChatEarthNet release captions ({Path(test_json).name})")


def load_data(dataset: str | Path = "demo", *, workdir: str | Path = "../build/demo", train_json: str | Path | None = None,
              paradigm: str | None = None) -> BenchmarkData:
    """Benchmark data named the way notebook 07 names it.

    ``dataset``: ``"demo"`` (the captions of ``workdir``; captioned in memory by the template
    backend when notebook 03 has not run), a built workdir folder (:func:`load_workdir`), or a
    ChatEarthNet test-split JSON with ``train_json`` the training split (:func:`load_release`).
    """
    if dataset == "demo" or Path(dataset).is_dir():
        return load_workdir(workdir if dataset == "demo" else Path(dataset), paradigm=paradigm,
                            generate_missing=dataset == "demo")
    if train_json is None:
        raise ValueError(f"dataset {dataset} is a ChatEarthNet JSON: also set train_json "
                         "(the baselines need training captions)")
    return load_release(dataset, train_json)


def runs_table(runs: Sequence[SystemRun]) -> pd.DataFrame:
    """One row per run with :meth:`SystemRun.record` (no captions)."""
    return pd.DataFrame([r.record() for r in runs])


def skipped_table(skipped: dict[str, str]) -> pd.DataFrame:
    """The systems :func:`run_baselines` skipped, with the reason (``system``, ``not run because``)."""
    return pd.DataFrame({"system": list(skipped), "not run because": list(skipped.values())})


# ---------------------------------------------------------------------------------------------
# constant


def constant_baseline(data: BenchmarkData, *, pool_size: int = 50, max_images: int = 500, seed: int = 0) -> SystemRun:
    """The single training caption with the highest CIDEr-D on the training set, for every test tile."""
    rng = random.Random(seed)
    train = list(data.train)
    pool = sorted({c for t in train for c in data.references[t]})
    if len(pool) > pool_size:
        pool = rng.sample(pool, pool_size)
    images = train if len(train) <= max_images else rng.sample(train, max_images)
    refs_flat = [r for t in images for r in data.references[t]]
    java = metrics.find_java()
    texts = refs_flat + pool
    tokens = metrics.ptb_tokenize(texts, java=java) if java else metrics.python_tokenize(texts)
    gts, pos = {}, 0
    for t in images:
        gts[t] = tokens[pos:pos + len(data.references[t])]
        pos += len(data.references[t])
    best, best_score = pool[0], -1.0
    for j, caption in enumerate(pool):
        res = {t: [tokens[len(refs_flat) + j]] for t in images}
        score = float(np.mean(metrics.cider_scores(gts, res, images)))
        if score > best_score:
            best, best_score = caption, score
    return SystemRun("constant", "best training caption (CIDEr-D on train)", {t: best for t in data.test}, data.split,
                     notes=f"CIDEr-D {best_score:.3f} on {len(images)} training images; pool of {len(pool)}")


# ---------------------------------------------------------------------------------------------
# nearest neighbour


def image_features(path: str | Path) -> np.ndarray:
    """Per band of a GeoTIFF: mean, std, 10th, 50th, 90th percentile of valid pixels; shape (5 * bands,) float64."""
    import rasterio

    try:
        with rasterio.open(path) as src:
            data = src.read(masked=True).astype(np.float64)
    except rasterio.errors.RasterioIOError as exc:
        raise FileNotFoundError(f"{path}: cannot read the image GeoTIFF ({exc})") from exc
    feats = []
    for band in data:
        v = band.compressed()
        if v.size == 0:
            raise BaselineError(f"{path}: a band has no valid pixels")
        feats += [v.mean(), v.std(), *np.percentile(v, [10, 50, 90])]
    return np.asarray(feats)


def landcover_histogram(counts: np.ndarray) -> np.ndarray:
    """Class shares (classes 1-11) of the whole tile and its five regions, shape (66,) float64."""
    c = np.asarray(counts, dtype=np.float64)[:, 1:]
    totals = c.sum(axis=1, keepdims=True)
    return (c / np.where(totals > 0, totals, 1.0)).ravel()


def nearest_neighbour_baseline(data: BenchmarkData, *, features: str = "image") -> SystemRun:
    """Caption of the most similar training tile, by ``"image"`` features or ``"landcover"`` histograms (oracle)."""
    if features == "image":
        missing = [t for t in data.train + data.test if t not in data.images]
        if missing:
            raise BaselineError(f"{len(missing)} tiles have no image (first {missing[:3]}); image features need "
                                "the tiles' Sentinel-2 GeoTIFFs (tiles.parquet image_path)")
        train_x = np.stack([image_features(data.images[t]) for t in data.train])
        test_x = np.stack([image_features(data.images[t]) for t in data.test])
        mu, sd = train_x.mean(axis=0), train_x.std(axis=0)
        sd[sd == 0] = 1.0
        train_x, test_x = (train_x - mu) / sd, (test_x - mu) / sd
        dist = np.sqrt(((test_x[:, None, :] - train_x[None, :, :]) ** 2).sum(axis=-1))
        system, model, oracle = "nearest neighbour (image)", "band mean/std/p10/p50/p90, z-scored, Euclidean", False
    elif features == "landcover":
        missing = [t for t in data.train + data.test if t not in data.counts]
        if missing:
            raise BaselineError(f"{len(missing)} tiles have no region counts (first {missing[:3]}); "
                                "land-cover histograms need stats.parquet")
        train_x = np.stack([landcover_histogram(data.counts[t]) for t in data.train])
        test_x = np.stack([landcover_histogram(data.counts[t]) for t in data.test])
        dist = np.abs(test_x[:, None, :] - train_x[None, :, :]).sum(axis=-1)
        system, model, oracle = "nearest neighbour (land cover, oracle)", "class shares of tile + 5 regions, L1", True
    else:
        raise ValueError(f"features must be 'image' or 'landcover', not {features!r}")
    nearest = dist.argmin(axis=1)
    cands = {t: data.references[data.train[j]][0] for t, j in zip(data.test, nearest)}
    return SystemRun(system, model, cands, data.split, oracle=oracle)


# ---------------------------------------------------------------------------------------------
# template (oracle)


def template_baseline(data: BenchmarkData, *, seed: int = 1) -> SystemRun:
    """Template captions of the test tiles from their region counts (wording seed ``seed``)."""
    from cen.generate.template import TEMPLATE_CAPTIONER_VERSION, caption_from_counts

    missing = [t for t in data.test if t not in data.counts]
    if missing:
        raise BaselineError(f"{len(missing)} test tiles have no region counts (first {missing[:3]}); "
                            "the template captioner needs stats.parquet")
    cands = {t: caption_from_counts(data.counts[t], seed=seed) for t in data.test}
    return SystemRun("template (oracle)", f"{TEMPLATE_CAPTIONER_VERSION} seed {seed}", cands, data.split, oracle=True)


# ---------------------------------------------------------------------------------------------
# vision-language model


def prompt_hash(prompt: str) -> str:
    """First 16 hex digits of the sha256 of a prompt."""
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


def rgb_png(path: str | Path) -> bytes:
    """PNG bytes of the true-colour rendering of a Sentinel-2 GeoTIFF: :func:`cen.tiling.read_rgb`,
    the project's one RGB stretch (B4/B3/B2 by band name, TCI scaling)."""
    from cen.tiling import png_bytes, read_rgb

    return png_bytes(read_rgb(path))


def vlm_baseline(
    data: BenchmarkData, *, model: str, base_url: str | None = None, prompt: str = VLM_PROMPT,
    max_tokens: int = 400, temperature: float | None = 0.0, cache_path: str | Path | None = None,
    concurrency: int = 8, timeout: float = 120.0, progress: bool = True,
) -> SystemRun:
    """Captions of the test tiles' RGB images from an OpenAI-compatible chat endpoint with image input.

    One request per tile (``prompt`` + the tile's RGB PNG as a data URL), run by the generation
    layer (``cen.generate.generate``, backend ``openai``): the real ``openai`` client, retries,
    concurrency and the SQLite cache, so a re-run costs nothing and an interrupted run resumes.
    The API key comes from ``$OPENAI_API_KEY`` only. Tiles whose call failed are left out of the
    run's candidates and named in its notes (score them with ``missing='empty'`` to count them).
    """
    from cen.generate.runner import GenerateConfig, generate
    from cen.prompting import PromptRequest, data_url, image_hash, messages_hash

    missing = [t for t in data.test if t not in data.images]
    if missing:
        raise BaselineError(f"{len(missing)} test tiles have no image (first {missing[:3]}); the VLM baseline needs "
                            "the tiles' Sentinel-2 GeoTIFFs (tiles.parquet image_path)")
    phash = prompt_hash(prompt)
    requests = []
    for tid in data.test:
        png = rgb_png(data.images[tid])
        messages = [{"role": "user", "content": [{"type": "text", "text": prompt},
                                                 {"type": "image_url", "image_url": {"url": data_url(png)}}]}]
        requests.append(PromptRequest(
            request_id=f"vlm:{tid}", paradigm="vlm", tile_ids=(tid,), template="cen-vlm-baseline",
            template_version=phash, model=model, max_tokens=max_tokens, messages=messages,
            messages_hash=messages_hash(messages), image_hashes=(image_hash(png),)))
    cfg = GenerateConfig(backend="openai", model=model, base_url=base_url, concurrency=concurrency, timeout=timeout,
                         temperature=temperature, store=False, progress=progress)
    result = generate(requests, cfg, cache_path=cache_path)
    frame = result.captions
    good = frame[frame["status"].isin(["ok", "cached", "recovered"]) & frame["text"].notna()]
    cands = {str(t): str(x) for t, x in zip(good["tile_id"], good["text"])}
    failed = sorted(set(data.test) - set(cands))
    returned = sorted({str(m) for m in good["model_returned"].dropna()} - {model})
    model_id = model + (f" (returned {', '.join(returned)})" if returned else "")
    notes = f"endpoint {base_url or 'api.openai.com'}; {len(frame)} calls, {result.spent_usd:.4f} USD this run"
    if failed:
        notes += f"; {len(failed)} tiles failed (first {failed[:3]})"
    return SystemRun("vision-language model", model_id, cands, data.split, prompt_hash=phash, notes=notes)


SYSTEMS = ("constant", "nn_image", "nn_landcover", "template", "vlm")
"""Names accepted by :func:`run_baselines`."""


def run_baselines(data: BenchmarkData, systems: Sequence[str] = SYSTEMS, *, vlm_model: str | None = None,
                  vlm_base_url: str | None = None, template_seed: int = 1,
                  cache_path: str | Path | None = None) -> tuple[list[SystemRun], dict[str, str]]:
    """Run the named systems; returns the runs and, per system that could not run, the reason.

    ``vlm`` runs only with a ``vlm_model``. Missing inputs (no images, no counts) skip a system
    with the reason instead of failing the others.
    """
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)}")
    runs: list[SystemRun] = []
    skipped: dict[str, str] = {}
    for name in systems:
        try:
            if name == "constant":
                runs.append(constant_baseline(data))
            elif name == "nn_image":
                runs.append(nearest_neighbour_baseline(data, features="image"))
            elif name == "nn_landcover":
                runs.append(nearest_neighbour_baseline(data, features="landcover"))
            elif name == "template":
                runs.append(template_baseline(data, seed=template_seed))
            elif name == "vlm":
                if not vlm_model:
                    skipped[name] = "no vlm_model given (any OpenAI-compatible chat model with image input)"
                    continue
                runs.append(vlm_baseline(data, model=vlm_model, base_url=vlm_base_url, cache_path=cache_path))
        except BaselineError as exc:
            skipped[name] = str(exc)
    return runs, skipped
