"""cen.scale: per-tile stages on a real 2-process LocalCluster vs the single-process path."""

from __future__ import annotations

import functools
import logging
import os
import signal
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from distributed import WorkerPlugin

from cen import landcover, scale

pytestmark = pytest.mark.timeout(300)


# --- stages (module level: workers import this module to unpickle them) ---------------------

def label_counts(tiles: pd.DataFrame) -> pd.DataFrame:
    """Class-index pixel counts of each tile's label GeoTIFF (a stand-in per-tile stage)."""
    import rasterio

    rows = []
    for tile_id, path in zip(tiles["tile_id"], tiles["label_path"]):
        with rasterio.open(path) as src:
            idx = landcover.codes_to_indices(src.read(1))
        counts = np.bincount(idx.ravel(), minlength=landcover.N_INDICES)
        rows.append({"tile_id": tile_id, **{f"n{i:02d}": int(c) for i, c in enumerate(counts)}})
    return pd.DataFrame(rows)


def synthetic_labels(tile_id: str, size: int = 64) -> np.ndarray:
    """A blocky label map of ChatEarthNet indices, deterministic per tile id."""
    rng = np.random.default_rng(zlib.crc32(tile_id.encode()))
    return np.repeat(np.repeat(rng.integers(0, 12, (size // 8, size // 8), dtype=np.uint8), 8, 0), 8, 1)


def synthetic_counts(tiles: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for tile_id in tiles["tile_id"]:
        counts = np.bincount(synthetic_labels(tile_id).ravel(), minlength=landcover.N_INDICES)
        rows.append({"tile_id": tile_id, **{f"n{i:02d}": int(c) for i, c in enumerate(counts)}})
    return pd.DataFrame(rows)


def kill_worker_once(tiles: pd.DataFrame, marker_dir: str, victim: str) -> pd.DataFrame:
    """:func:`synthetic_stats`, but the first attempt at ``victim``'s partition SIGKILLs its worker."""
    marker = Path(marker_dir) / "killed"
    if victim in set(tiles["tile_id"]) and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return synthetic_stats(tiles)


def barrier_counts(tiles: pd.DataFrame, barrier_dir: str, parties: int) -> pd.DataFrame:
    """:func:`synthetic_counts` once ``parties`` different processes have reached this point (a file
    barrier): it returns only if that many partitions run at the same time in different workers."""
    folder = Path(barrier_dir)
    (folder / str(os.getpid())).write_text(tiles["tile_id"].iloc[0])
    deadline = time.monotonic() + 60
    while len(list(folder.iterdir())) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{barrier_dir}: only {len(list(folder.iterdir()))} of {parties} workers arrived")
        time.sleep(0.01)
    return synthetic_counts(tiles)


class KillShardWorkerAt(WorkerPlugin):
    """Worker plugin: when a worker first starts the task of shard ``shard``, it asks the local OpenAI server
    (``POST /_control``) to SIGKILL this worker right after the server's ``billed``-th completion --
    the point is the server's, not a thread's guess."""

    name = "kill-shard-worker"

    def __init__(self, control_url: str, shard: int, billed: int, marker: str) -> None:
        self.control_url, self.shard, self.billed, self.marker = control_url, shard, billed, marker

    def transition(self, key, start, finish, **kwargs) -> None:
        import json
        import urllib.request

        if finish == "executing" and f"-{self.shard:05d}-" in str(key):
            try:  # the first attempt only: the re-run of the shard elsewhere must live
                with open(self.marker, "x") as fh:
                    fh.write(str(os.getpid()))
            except FileExistsError:
                return
            body = json.dumps({"kill_after": {"billed": self.billed, "pid": os.getpid()}}).encode()
            urllib.request.urlopen(urllib.request.Request(self.control_url, body, {"Content-Type": "application/json"}),
                                   timeout=10).read()


def synthetic_stats(tiles: pd.DataFrame) -> pd.DataFrame:
    """cen.stats over synthetic label arrays (no files)."""
    from cen import stats

    ids = tiles["tile_id"].tolist()
    return stats.stats_table(np.stack([synthetic_labels(t) for t in ids]), ids)


def drops_a_tile(tiles: pd.DataFrame) -> pd.DataFrame:
    return synthetic_counts(tiles).iloc[1:]


def repeats_a_tile(tiles: pd.DataFrame) -> pd.DataFrame:
    out = synthetic_counts(tiles)
    return pd.concat([out, out.iloc[:1]], ignore_index=True)


def fails_on(tiles: pd.DataFrame, bad: str) -> pd.DataFrame:
    if bad in set(tiles["tile_id"]):
        raise ValueError(f"tile {bad}: unreadable label")
    return synthetic_counts(tiles)


def with_footprints(tiles: pd.DataFrame):
    import geopandas as gpd
    from shapely.geometry import box

    out = synthetic_counts(tiles)
    return gpd.GeoDataFrame(out, geometry=[box(i, 0, i + 1, 1) for i in range(len(out))], crs="EPSG:4326")


def count_partial(frame: pd.DataFrame) -> pd.Series:
    return frame.drop(columns="tile_id").sum()


def add(a: pd.Series, b: pd.Series) -> pd.Series:
    return a + b


# --- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    """One 2-worker-process LocalCluster for the whole module (start-up costs seconds)."""
    from distributed import Client

    with scale.local_cluster(2, dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    """A workdir holding the embedded demo's ``tiles.parquet`` (real WorldCover crops, real readers)."""
    from cen.sources.demo import build_demo_tiles

    workdir = tmp_path_factory.mktemp("demo")
    build_demo_tiles(workdir)
    return workdir


@pytest.fixture(scope="module")
def demo_tiles(demo_dir):
    """The labelled rows of the demo tiles table."""
    from cen.tables import resolve_path_columns

    frame = resolve_path_columns(pd.read_parquet(demo_dir / "tiles.parquet"), demo_dir)  # stored relative
    return frame[frame["label_path"].notna()].reset_index(drop=True)


def synthetic_tiles(n: int) -> pd.DataFrame:
    return pd.DataFrame({"tile_id": [f"syn_{i:06d}" for i in range(n)]})


# --- tests -----------------------------------------------------------------------------------

def test_demo_stats_on_cluster_equal_single_process(client, demo_tiles, tmp_path):
    from cen import stats

    assert len(demo_tiles) >= 20
    run = scale.run_stats(demo_tiles, tmp_path / "stats", client=client, partition_size=5, progress=False,
                          merge_to=tmp_path / "stats.parquet")
    assert (run.n_partitions, run.n_computed, run.n_skipped) == (5, 5, 0)
    assert set(run.peak_rss_by_worker) <= set(client.scheduler_info()["workers"])  # ran on the cluster's workers
    assert run.dashboard and run.dashboard.startswith("http")
    single = stats.stats_table_from_tiles(demo_tiles, progress=False)
    pd.testing.assert_frame_equal(scale.read_stage(tmp_path / "stats"), single)
    pd.testing.assert_frame_equal(stats.read_stats(tmp_path / "stats.parquet"), single)
    assert single["gpt35_context"].str.len().min() > 0
    # dataset-level statistics from the partitions, chunked, equal the whole-table accumulator
    acc = scale.dataset_stats(tmp_path / "stats", client=client, rows_per_chunk=4, batch_size=3, progress=False)
    whole = stats.DatasetStats.from_table(single)
    assert acc.n_tiles == len(demo_tiles)
    pd.testing.assert_frame_equal(acc.class_frame(), whole.class_frame())
    pd.testing.assert_frame_equal(acc.region_frame(), whole.region_frame())


def test_label_stage_reads_demo_geotiffs_on_cluster(client, demo_tiles, tmp_path):
    run = scale.run_stage(label_counts, demo_tiles, tmp_path / "counts", client=client, partition_size=8,
                          progress=False)
    assert run.n_rows == len(demo_tiles)
    counts = scale.read_stage(tmp_path / "counts")
    pd.testing.assert_frame_equal(counts, label_counts(demo_tiles))
    assert (counts.filter(like="n").sum(axis=1) == 256 * 256).all()


def test_partitions_run_in_both_workers_at_once(client, tmp_path):
    (tmp_path / "barrier").mkdir()
    stage = functools.partial(barrier_counts, barrier_dir=str(tmp_path / "barrier"), parties=2)
    run = scale.run_stage(stage, synthetic_tiles(20), tmp_path / "out", client=client, partition_size=10,
                          stage_name="barrier", progress=False)
    assert len(run.peak_rss_by_worker) == 2 and len({p.worker for p in run.partitions}) == 2
    assert len(list((tmp_path / "barrier").iterdir())) == 2  # two processes, neither the test's
    assert str(os.getpid()) not in {p.name for p in (tmp_path / "barrier").iterdir()}
    pd.testing.assert_frame_equal(scale.read_stage(tmp_path / "out"), synthetic_counts(synthetic_tiles(20)))


def test_sync_mode_and_scheduler_address_give_the_same_partitions(client, tmp_path):
    tiles = synthetic_tiles(230)
    sync = scale.run_stage(synthetic_counts, tiles, tmp_path / "sync", client="sync", partition_size=50,
                           progress=False)
    remote = scale.run_stage(synthetic_counts, tiles, tmp_path / "addr", client=client.scheduler.address,
                             partition_size=50, progress=False)
    assert sync.n_partitions == remote.n_partitions == 5
    assert [p.name for p in scale.partition_files(tmp_path / "sync")] == \
           [f"part-{i:05d}.parquet" for i in range(5)]
    pd.testing.assert_frame_equal(scale.read_stage(tmp_path / "sync"), scale.read_stage(tmp_path / "addr"))
    pd.testing.assert_frame_equal(scale.read_stage(tmp_path / "sync"), synthetic_counts(tiles))


def test_rerun_skips_finished_partitions_and_redoes_missing_ones(client, tmp_path):
    tiles = synthetic_tiles(120)
    out = tmp_path / "stats"
    first = scale.run_stage(synthetic_counts, tiles, out, client=client, partition_size=30, progress=False)
    assert first.n_computed == 4
    mtimes = {p.name: p.stat().st_mtime_ns for p in scale.partition_files(out)}
    (out / "part-00002.parquet").unlink()
    # what a writer SIGKILLed before its rename leaves behind: ignored by readers, cleaned on re-run
    (out / ".part-00001.abc123.tmp.parquet").write_bytes(b"half a parquet file")
    assert len(scale.read_stage(out)) == 90
    second = scale.run_stage(synthetic_counts, tiles, out, client=client, partition_size=30, progress=False)
    assert (second.n_computed, second.n_skipped) == (1, 3)
    assert not list(out.glob(".part-*"))
    for p in scale.partition_files(out):
        if p.name != "part-00002.parquet":
            assert p.stat().st_mtime_ns == mtimes[p.name], f"{p.name} was rewritten"
    pd.testing.assert_frame_equal(scale.read_stage(out), synthetic_counts(tiles))


def test_worker_killed_mid_run_loses_and_duplicates_no_tiles(client, tmp_path):
    tiles = synthetic_tiles(400)
    victim = "syn_000130"
    stage = functools.partial(kill_worker_once, marker_dir=str(tmp_path), victim=victim)
    run = scale.run_stage(stage, tiles, tmp_path / "out", client=client, partition_size=25, stage_name="killer",
                          progress=False)
    assert (tmp_path / "killed").exists(), "the victim's worker was never killed"
    assert run.n_computed == 16 and run.n_rows == 400
    result = scale.read_stage(tmp_path / "out")
    assert result["tile_id"].is_unique
    assert sorted(result["tile_id"]) == sorted(tiles["tile_id"])
    pd.testing.assert_frame_equal(result, synthetic_stats(tiles))
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker


def test_stage_that_loses_or_repeats_tiles_is_refused(tmp_path):
    tiles = synthetic_tiles(10)
    with pytest.raises(scale.ScaleError, match=r"part-00000\.parquet.*1 missing \(e\.g\. \['syn_000000'\]\)"):
        scale.run_stage(drops_a_tile, tiles, tmp_path / "a", client="sync", progress=False)
    with pytest.raises(scale.ScaleError, match=r"repeats \{'tile_id': 'syn_000000'\}"):
        scale.run_stage(repeats_a_tile, tiles, tmp_path / "b", client="sync", progress=False)
    assert not scale.partition_files(tmp_path / "a") and not scale.partition_files(tmp_path / "b")


def test_failed_partitions_are_named_and_the_rest_resume(client, tmp_path):
    tiles = synthetic_tiles(100)
    stage = functools.partial(fails_on, bad="syn_000042")
    with pytest.raises(scale.ScaleError, match=r"1 of 4 partitions failed \(part-00001\.parquet\).*syn_000042"):
        scale.run_stage(stage, tiles, tmp_path / "out", client=client, partition_size=25, stage_name="flaky",
                        retries=0, progress=False)
    assert [p.name for p in scale.partition_files(tmp_path / "out")] == \
           ["part-00000.parquet", "part-00002.parquet", "part-00003.parquet"]
    fixed = functools.partial(fails_on, bad="none")
    run = scale.run_stage(fixed, tiles, tmp_path / "out", client="sync", partition_size=25, stage_name="flaky",
                          progress=False)
    assert (run.n_computed, run.n_skipped) == (1, 3)


def test_bad_tiles_tables_and_foreign_folders_are_refused(tmp_path):
    with pytest.raises(scale.ScaleError, match="no column 'tile_id'"):
        scale.run_stage(synthetic_counts, pd.DataFrame({"id": ["a"]}), tmp_path / "x", client="sync")
    dup = pd.DataFrame({"tile_id": ["a", "b", "a"]})
    with pytest.raises(scale.ScaleError, match="repeats tile 'a'"):
        scale.run_stage(synthetic_counts, dup, tmp_path / "x", client="sync")
    scale.run_stage(synthetic_counts, synthetic_tiles(10), tmp_path / "y", client="sync", progress=False)
    with pytest.raises(scale.ScaleError, match="holds partitions of another run"):
        scale.run_stage(synthetic_counts, synthetic_tiles(12), tmp_path / "y", client="sync", progress=False)
    run = scale.run_stage(synthetic_counts, synthetic_tiles(12), tmp_path / "y", client="sync", overwrite=True,
                          partition_size=10, progress=False)
    assert run.n_rows == 12 and len(scale.read_stage(tmp_path / "y")) == 12
    # a grown tiles table: the finished partition is kept, only the changed and new ones run
    grown = scale.run_stage(synthetic_counts, synthetic_tiles(30), tmp_path / "y", client="sync", overwrite=True,
                            partition_size=10, progress=False)
    assert (grown.n_partitions, grown.n_skipped, grown.n_computed) == (3, 1, 2)
    shrunk = scale.run_stage(synthetic_counts, synthetic_tiles(15), tmp_path / "y", client="sync", overwrite=True,
                             partition_size=10, progress=False)
    assert (shrunk.n_skipped, shrunk.n_computed) == (1, 1)
    pd.testing.assert_frame_equal(scale.read_stage(tmp_path / "y"), synthetic_counts(synthetic_tiles(15)))
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "part-00000.parquet").write_bytes(b"not ours")
    with pytest.raises(scale.ScaleError, match="holds partition files but no _plan.json"):
        scale.run_stage(synthetic_counts, synthetic_tiles(3), tmp_path / "z", client="sync", progress=False)


def test_geodataframe_results_are_written_as_geoparquet(tmp_path):
    import geopandas as gpd

    scale.run_stage(with_footprints, synthetic_tiles(7), tmp_path / "geo", client="sync", partition_size=3,
                    progress=False)
    assert b"geo" in pq.read_schema(scale.partition_files(tmp_path / "geo")[0]).metadata
    back = scale.read_stage(tmp_path / "geo")
    assert isinstance(back, gpd.GeoDataFrame) and back.crs.to_epsg() == 4326
    assert back.geometry.bounds["minx"].tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_reduce_partitions_bounded_batches_cluster_equals_single_process(client, tmp_path):
    tiles = synthetic_tiles(1000)
    scale.run_stage(synthetic_counts, tiles, tmp_path / "parts", client="sync", partition_size=100, progress=False)
    expected = synthetic_counts(tiles).drop(columns="tile_id").sum()
    seen_sizes: list[int] = []

    def recording_partial(frame):
        seen_sizes.append(len(frame))
        return count_partial(frame)

    sync = scale.reduce_partitions(tmp_path / "parts", recording_partial, add, client="sync", batch_size=40,
                                   progress=False)
    assert max(seen_sizes) == 40 and sum(seen_sizes) == 1000
    pd.testing.assert_series_equal(sync, expected)
    remote = scale.reduce_partitions(tmp_path / "parts", count_partial, add, client=client, progress=False)
    pd.testing.assert_series_equal(remote, expected)
    # one big file with many row groups is cut into chunks as well
    big = tmp_path / "big.parquet"
    pq.write_table(pq.read_table(scale.partition_files(tmp_path / "parts")), big, row_group_size=64)
    chunks = scale.plan_chunks(big, rows_per_chunk=200)
    assert [c.n_rows for c in chunks] == [192] * 5 + [40]
    pd.testing.assert_series_equal(
        scale.reduce_partitions(big, count_partial, add, client=client, rows_per_chunk=200, progress=False), expected)
    with pytest.raises(scale.ScaleError, match="no column 'n99'"):
        scale.reduce_partitions(big, count_partial, add, columns=["n99"], client="sync", progress=False)


def test_dask_frame_reads_a_stage_folder_lazily(tmp_path):
    scale.run_stage(synthetic_counts, synthetic_tiles(90), tmp_path / "p", client="sync", partition_size=30,
                    progress=False)
    frame = scale.dask_frame(tmp_path / "p", columns=["tile_id", "n03"])
    assert frame.npartitions == 3
    assert int(frame["n03"].sum().compute(scheduler="sync")) == int(synthetic_counts(synthetic_tiles(90))["n03"].sum())


def test_caption_stats_over_partitions_equal_one_pass(client, tmp_path):
    from cen import textstats

    rng = np.random.default_rng(7)
    words = ["water", "trees", "a", "crop", "fields", "urban", "the", "bare", "land", "and", "grassland"]
    texts = [" ".join(rng.choice(words, rng.integers(3, 30))) + ". Mostly tree cover." for _ in range(900)]
    captions = pd.DataFrame({"tile_id": [f"t{i // 2:04d}" for i in range(900)],
                             "paradigm": ["gpt35", "gpt4v"] * 450, "text": texts})
    captions.to_parquet(tmp_path / "captions.parquet", index=False, row_group_size=100)
    one_pass = textstats.caption_stats(captions, by="paradigm")
    chunked = scale.caption_stats(tmp_path / "captions.parquet", by="paradigm", client=client,
                                  rows_per_chunk=200, batch_size=50, progress=False)
    assert list(chunked) == list(one_pass) == [("gpt35",), ("gpt4v",)]
    for key in one_pass:
        a, b = one_pass[key], chunked[key]
        assert b.summary() == a.summary()
        assert (b.lengths, b.sentences) == (a.lengths, a.sentences)
        assert (b.words, b.class_mentions, b.class_captions) == (a.words, a.class_mentions, a.class_captions)
    with pytest.raises(scale.ScaleError, match="no column 'caption'"):
        scale.caption_stats(tmp_path / "captions.parquet", text_col="caption", client="sync", progress=False)


def test_merge_stage_writes_one_table_in_partition_order(tmp_path):
    import geopandas as gpd

    scale.run_stage(with_footprints, synthetic_tiles(7), tmp_path / "geo", client="sync", partition_size=3,
                    progress=False)
    merged = scale.merge_stage(tmp_path / "geo", tmp_path / "all.parquet")
    back = gpd.read_parquet(merged)
    assert back["tile_id"].tolist() == synthetic_tiles(7)["tile_id"].tolist() and back.crs.to_epsg() == 4326
    assert scale.META_KEY not in pq.read_schema(merged).metadata
    with pytest.raises(scale.ScaleError, match="no partition files"):
        scale.merge_stage(tmp_path / "nothing", tmp_path / "x.parquet")


def test_build_samples_on_cluster_equal_single_process(client, http_server, tmp_path):
    """Source read + label alignment (STAC search, nine-band read, WorldCover) on 2 workers over HTTP."""
    import rasterio

    from cen.sources import sampling, stac
    from test_sources_stac import S2_LAT, S2_LON, relocated_worldcover, s2_item, write_api

    root, base = http_server.root, http_server.url
    items = [s2_item(base, root, "clear", datetime="2016-01-12T15:58:00Z", cloud=3.0),
             s2_item(base, root, "cloudy", datetime="2016-01-12T15:58:00Z", cloud=55.0)]
    url = write_api(root, base, items)
    relocated_worldcover(root, "N36W078", -75.66, 37.75)
    plan = pd.DataFrame({"sample_id": ["a", "b", "c", "d"], "lon": [S2_LON, 10.0, -75.62, -75.63],
                         "lat": [S2_LAT, 50.0, 37.70, 37.72]})
    kw = dict(dates="2016-01-01/2016-01-31", worldcover_url=base)
    tiles, skipped, run = scale.build_samples(plan, tmp_path / "dask", client=client, catalog_url=url,
                                              partition_size=2, run_kwargs={"progress": False}, **kw)
    assert run.n_partitions == 2 and run.n_rows == 4
    single, single_skipped = sampling.build_samples(plan, tmp_path / "one", catalog=stac.open_catalog(url=url),
                                                    progress=False, **kw)
    assert sorted(tiles["tile_id"]) == sorted(single["tile_id"]) == ["a_clear", "c_clear", "d_clear"]
    assert skipped["sample_id"].tolist() == single_skipped["sample_id"].tolist() == ["b"]
    same_cols = [c for c in tiling_columns() if not c.endswith("_path")]
    pd.testing.assert_frame_equal(tiles[same_cols].sort_values("tile_id").reset_index(drop=True),
                                  single[same_cols].sort_values("tile_id").reset_index(drop=True))
    for a, b in zip(tiles.sort_values("tile_id")["label_path"], single.sort_values("tile_id")["label_path"]):
        with rasterio.open(a) as x, rasterio.open(b) as y:
            assert np.array_equal(x.read(), y.read())
    assert (tmp_path / "dask" / "tiles.parquet").exists() and (tmp_path / "dask" / "samples_skipped.csv").exists()


def tiling_columns() -> tuple[str, ...]:
    from cen.tiling import TILES_COLUMNS

    return TILES_COLUMNS


def test_cli_scale_stats_dataset_and_caption_stats(client, demo_dir, demo_tiles, tmp_path, capsys):
    from cen import cli, stats

    addr = client.scheduler.address
    assert cli.main(["scale", "stats", str(demo_dir / "tiles.parquet"), str(tmp_path / "parts"), "--scheduler", addr,
                     "--partition-size", "7", "--merge-to", str(tmp_path / "stats.parquet")]) == 0
    assert f"{len(demo_tiles)} tiles in 4 partitions (4 computed, 0 already done)" in capsys.readouterr().out
    pd.testing.assert_frame_equal(stats.read_stats(tmp_path / "stats.parquet"),
                                  stats.stats_table_from_tiles(demo_tiles, progress=False))
    assert cli.main(["scale", "stats", str(demo_dir / "tiles.parquet"), str(tmp_path / "parts"), "--sync",
                     "--partition-size", "7"]) == 0
    assert "(0 computed, 4 already done)" in capsys.readouterr().out
    assert cli.main(["scale", "dataset-stats", str(tmp_path / "parts"), "--sync"]) == 0
    assert "developed area" in capsys.readouterr().out
    captions = pd.DataFrame({"paradigm": ["a", "b", "a"], "text": ["Water and trees.", "Crop land. Bare.", "Grass."]})
    captions.to_parquet(tmp_path / "captions.parquet")
    assert cli.main(["scale", "caption-stats", str(tmp_path / "captions.parquet"), "--by", "paradigm", "--sync"]) == 0
    out = capsys.readouterr().out
    assert "paradigm" in out and "n_captions" in out
    assert cli.main(["scale", "stats", str(tmp_path / "missing.parquet"), str(tmp_path / "x"), "--sync"]) == 1
    assert "missing.parquet: tiles table not found" in capsys.readouterr().err


def test_local_cluster_workers_keep_glibc_adaptive_malloc(client):
    envs = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    assert len(envs) == 2 and set(envs.values()) == {None}
    assert scale.machine_workers() >= 1


def set_env(name: str, value: str) -> None:
    os.environ[name] = value


def _stats_of(ids: list[str]) -> pd.DataFrame:
    from cen import stats

    return stats.stats_table(np.stack([synthetic_labels(t) for t in ids]), ids)


def _openai_config(server, **kw):
    from cen.generate.runner import GenerateConfig

    base = dict(backend="openai", base_url=server.base_url, model="gpt-3.5-turbo-1106", api_key_env="CEN_TEST_KEY",
                concurrency=4, backoff_base=0.01, recover_in_flight=True, recover_grace=0.3, progress=False)
    return GenerateConfig(**{**base, **kw})


def test_generation_sharded_over_workers_shares_the_cache(client, tmp_path, monkeypatch):
    from cen.generate.runner import read_captions
    from openai_server import OpenAIServer, billed_calls, duplicate_paid_calls

    client.run(set_env, "CEN_TEST_KEY", "sk-local-test")  # workers read the key from their env
    monkeypatch.setenv("CEN_TEST_KEY", "sk-local-test")
    ids = [f"g{i:03d}_patch{p}" for i in range(12) for p in ("00", "01", "10", "11")]
    table = _stats_of(ids)
    cache = tmp_path / "generation.sqlite"
    with OpenAIServer(latency=0.02) as server:
        cfg = _openai_config(server)
        run = scale.generate_sharded(table, tmp_path / "caps", cfg, client=client, shard_size=10, cache_path=cache,
                                     merge_to=tmp_path / "captions.parquet", run_kwargs={"progress": False})
        # shards of 10 grow to 12 so that no 512-px tile's four patches are split
        assert run.n_partitions == 4 and [p.n_rows for p in run.partitions] == [12, 12, 12, 12]
        assert run.peak_rss_by_worker and set(run.peak_rss_by_worker) <= set(client.scheduler_info()["workers"])
        caps = read_captions(tmp_path / "captions.parquet")
        assert caps["tile_id"].tolist() == ids and set(caps["status"]) == {"ok"}
        assert len(billed_calls(server.log)) == 48 and duplicate_paid_calls(server.log) == 0
        # other shards (other size, new folder, in this process) find every answer in the shared cache
        again = scale.generate_sharded(table, tmp_path / "caps2", cfg, client="sync", shard_size=20, cache_path=cache,
                                       run_kwargs={"progress": False})
        caps2 = scale.read_stage(tmp_path / "caps2")
        assert again.n_partitions == 3 and set(caps2["status"]) == {"cached"}
        assert caps2["text"].tolist() == caps["text"].tolist()
        assert len(billed_calls(server.log)) == 48


def test_generation_worker_killed_mid_shard_pays_each_prompt_once(client, tmp_path, monkeypatch):
    """The worker running shard 0 is SIGKILLed by the server right after the 10th billed completion
    (answers 1-9 cached, the 10th billed but unanswered, others in flight); one shard runs at a time,
    so all ten are shard 0's. The re-run shard takes the cached answers, recovers the billed ones
    and pays for nothing twice."""
    from openai_server import OpenAIServer, billed_calls, duplicate_paid_calls

    client.wait_for_workers(2, timeout=60)
    client.run(set_env, "CEN_TEST_KEY", "sk-local-test")
    monkeypatch.setenv("CEN_TEST_KEY", "sk-local-test")  # the worker the nanny restarts inherits this process's env
    ids = [f"k{i:03d}" for i in range(64)]
    table = _stats_of(ids)
    pids_before = set(client.run(os.getpid).values())
    with OpenAIServer(latency=0.05) as server:
        marker = tmp_path / "victim.pid"
        plugin = KillShardWorkerAt(f"http://127.0.0.1:{server.server_address[1]}/_control", shard=0, billed=10,
                                   marker=str(marker))
        client.register_plugin(plugin, name=KillShardWorkerAt.name)
        try:
            run = scale.generate_sharded(table, tmp_path / "caps", _openai_config(server), client=client,
                                         shard_size=16, cache_path=tmp_path / "c.sqlite",
                                         run_kwargs={"progress": False, "max_in_flight": 1})
        finally:
            client.unregister_worker_plugin(KillShardWorkerAt.name)
        victim = int(marker.read_text())
        assert victim in pids_before and server.api.kill_after["pid"] == victim and server.api.n_billed == 64
        caps = scale.read_stage(tmp_path / "caps")
        assert caps["tile_id"].tolist() == ids and caps["text"].notna().all() and run.n_rows == 64
        shard0 = caps["status"].iloc[:16]
        # the 10 paid before the kill come back from the cache (answered) or the stored completions
        # (billed, never answered: at least the 10th); the rest of the shard is asked afresh
        assert set(shard0) <= {"cached", "recovered", "ok"} and (shard0 != "ok").sum() >= 10
        assert (shard0 == "recovered").sum() >= 1
        assert set(caps["status"].iloc[16:]) == {"ok"}  # shards 1-3 ran after the kill
        assert duplicate_paid_calls(server.log) == 0 and len(billed_calls(server.log)) == 64
    client.wait_for_workers(2, timeout=60)
    assert victim not in set(client.run(os.getpid).values())


def test_without_a_client_a_local_cluster_is_started_and_closed(tmp_path):
    import psutil

    before = set(psutil.Process().children(recursive=True))
    run = scale.run_stage(synthetic_counts, synthetic_tiles(40), tmp_path / "p", partition_size=10, progress=False,
                          cluster_kwargs={"n_workers": 1, "dashboard_address": ":0", "silence_logs": logging.ERROR})
    assert run.n_computed == 4 and run.dashboard.startswith("http")
    assert len(run.peak_rss_by_worker) == 1 and next(iter(run.peak_rss_by_worker)).startswith("tcp://")
    pd.testing.assert_frame_equal(scale.read_stage(tmp_path / "p"), synthetic_counts(synthetic_tiles(40)))
    def leftovers() -> list[str]:
        found = []
        for p in set(psutil.Process().children(recursive=True)) - before:
            try:
                cmd = " ".join(p.cmdline())
                if p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in cmd:
                    found.append(cmd)
            except psutil.NoSuchProcess:
                pass
        return found

    started = []
    for p in set(psutil.Process().children(recursive=True)) - before:
        try:
            if "resource_tracker" not in " ".join(p.cmdline()):
                started.append(p)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(started, timeout=10)  # returns as soon as they are gone; no fixed sleep
    assert not leftovers(), "the LocalCluster's worker processes outlived the run"


def test_prompt_cost_estimate_over_partitions_equals_one_pass(client, tmp_path):
    from cen import prompting

    ids = [f"e{i:04d}" for i in range(300)]
    table = _stats_of(ids)
    table.to_parquet(tmp_path / "stats.parquet", row_group_size=50)
    one = prompting.estimate_cost(prompting.build_requests(table, "gpt35"))
    parts = scale.estimate_cost(tmp_path / "stats.parquet", client=client, rows_per_chunk=100, batch_size=40,
                                progress=False)
    pd.testing.assert_frame_equal(parts, one, check_dtype=False)
    assert int(parts["requests"].iloc[0]) == 300 and parts["input_tokens"].iloc[0] > 300 * 50


def test_template_generation_sharded_equals_one_pass(tmp_path):
    from cen import prompting
    from cen.generate.runner import GenerateConfig, generate

    ids = [f"q{i:03d}" for i in range(25)]
    table = _stats_of(ids)
    cfg = GenerateConfig(backend="template", progress=False)
    scale.generate_sharded(table, tmp_path / "caps", cfg, client="sync", shard_size=10, cache_path=tmp_path / "c.sqlite",
                           run_kwargs={"progress": False})
    sharded = scale.read_stage(tmp_path / "caps")
    one = generate(prompting.build_requests(table, "gpt35"), cfg).captions
    assert sharded["tile_id"].tolist() == ids
    assert sharded["text"].tolist() == one["text"].tolist() and set(sharded["status"]) == {"ok"}


def test_generate_sharded_reads_a_stats_file_as_a_stats_table(tmp_path):
    from cen.generate.runner import GenerateConfig

    cfg = GenerateConfig(backend="template", progress=False)
    with pytest.raises(FileNotFoundError, match=r"stats\.parquet: stats table not found \(run notebook 02"):
        scale.generate_sharded(tmp_path / "stats.parquet", tmp_path / "caps", cfg, client="sync")
    ids = [f"s{i:02d}" for i in range(6)]
    _stats_of(ids).drop(columns="gpt35_context").to_parquet(tmp_path / "stats.parquet")
    with pytest.raises(KeyError, match=r"stats\.parquet: missing column 'gpt35_context' in the stats table"):
        scale.generate_sharded(tmp_path / "stats.parquet", tmp_path / "caps", cfg, client="sync")
    _stats_of(ids).to_parquet(tmp_path / "stats.parquet")
    run = scale.generate_sharded(tmp_path / "stats.parquet", tmp_path / "caps", cfg, client="sync", shard_size=4,
                                 cache_path=tmp_path / "c.sqlite", run_kwargs={"progress": False})
    assert run.n_rows == 6 and scale.read_stage(tmp_path / "caps")["tile_id"].tolist() == ids


def test_merge_estimates_of_halves_equals_the_whole():
    from cen import prompting

    reqs = prompting.build_requests(_stats_of([f"m{i}" for i in range(9)]), "gpt35")
    whole = prompting.estimate_cost(reqs)
    halves = prompting.merge_estimates(prompting.estimate_cost(reqs[:4]), prompting.estimate_cost(reqs[4:]))
    pd.testing.assert_frame_equal(halves, whole, check_dtype=False)
    unpriced = prompting.estimate_cost(reqs[:2], model="no-such-model")
    merged = prompting.merge_estimates(unpriced, unpriced)
    assert merged["requests"].iloc[0] == 4 and np.isnan(merged["cost_usd"].iloc[0])


def worldcover_codes_stage(tiles: pd.DataFrame, href: str) -> pd.DataFrame:
    """Source read + label alignment: WorldCover codes on each tile's grid (SHA-256 and land pixels)."""
    import hashlib

    from affine import Affine
    from rasterio.crs import CRS

    from cen.sources import worldcover
    from cen.tiling import Grid

    rows = []
    for r in tiles.itertuples(index=False):
        grid = Grid(CRS.from_user_input(r.crs), Affine(*r.transform), int(r.width), int(r.height))
        codes = worldcover.read_worldcover(grid, hrefs={"N00E006": href}).codes
        rows.append({"tile_id": r.tile_id, "codes_sha256": hashlib.sha256(codes.tobytes()).hexdigest(),
                     "land_pixels": int(((codes != 80) & (codes != 0)).sum())})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("cog", ["committed crop", "full tile"])
def test_real_worldcover_cog_over_http_on_workers_equals_committed_crop(cog, client, http_server, tmp_path, request):
    """Workers read label windows of a real WorldCover COG over HTTP (Range requests through GDAL's
    /vsicurl/): the committed São Tomé crop (runs on every clone) or the 36,000-px N00E006 tile it
    was cut from (``../shared/data``); the result equals reading the committed crop in this process."""
    import shutil

    from cen import tiling
    from cen.sources import demo

    if cog == "full tile":
        real = request.getfixturevalue("shared_data") / "esa-worldcover" / "ESA_WorldCover_10m_2020_v100_N00E006_Map.tif"
    else:
        real = demo.DEMO_WORLDCOVER[2020]
    shutil.copy(real, http_server.root / "wc.tif")
    grid = demo.label_grid(demo.DEMO_WORLDCOVER[2020])
    tiles = pd.DataFrame([tiling.tile_record(t) for t in grid.tiles(source="wc")[40:52]]).drop(columns="geometry")
    run = scale.run_stage(functools.partial(worldcover_codes_stage, href=f"{http_server.url}/wc.tif"), tiles,
                          tmp_path / "codes", client=client, partition_size=3, stage_name="wc", progress=False)
    assert run.n_rows == 12 and any(r.path.startswith("/wc.tif") and r.range for r in http_server.requests)
    remote = scale.read_stage(tmp_path / "codes")
    local = worldcover_codes_stage(tiles, str(demo.DEMO_WORLDCOVER[2020]))
    pd.testing.assert_frame_equal(remote, local)
    assert remote["land_pixels"].sum() > 0
