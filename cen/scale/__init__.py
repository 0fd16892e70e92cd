"""Run the per-tile stages over many tiles on a Dask cluster (or one laptop), resumably.

``scale`` adds no pipeline logic of its own: it cuts a tiles table into contiguous *partitions*
(tile ranges), runs a stage function -- ``DataFrame of tiles -> DataFrame keyed by tile_id``,
e.g. :func:`cen.stats.stats_table` -- on each partition as one Dask task, and streams every
result into ``<out_dir>/part-NNNNN.parquet`` (GeoParquet when the result has geometry).

* **Where it runs.** Every entry point takes ``client``: a :class:`distributed.Client`, a
  scheduler address (``"tcp://10.0.0.5:8786"``), ``None`` (start a :class:`LocalCluster` sized
  to this machine: one single-threaded worker process per CPU) or ``"sync"`` (no Dask: run the
  same task code in this process, the single-process baseline).
* **Resume.** A partition file is written atomically (temporary dot-file + rename) and carries
  the fingerprint of its tile ids and stage in its Parquet metadata; a re-run skips partitions
  whose file has the right fingerprint, so finished work is never redone.
* **Failure.** A worker killed mid-task loses nothing: the scheduler re-runs the task elsewhere
  and the rename makes the partition appear once, complete. Each task checks that the stage
  returned every input tile exactly once, so tiles are neither lost nor duplicated.
* **Bounded memory.** At most ``max_in_flight`` partitions are submitted at a time, and
  :func:`reduce_partitions` folds partitioned tables (stats, captions) into an accumulator
  batch by batch, so millions of rows never need to fit in memory.
* **Progress.** A tqdm bar over completed partitions and the Dask dashboard link.

Entry points for the pipeline's stages (each the single-process function of its module, run per
partition): :func:`build_samples` (STAC scene + WorldCover labels per planned point,
:mod:`cen.sources.sampling`), :func:`run_stats` (:mod:`cen.stats`), :func:`estimate_cost`
(prompts and tokens, :mod:`cen.prompting`), :func:`generate_sharded` (:mod:`cen.generate`, one
shared cache), and over partitioned tables :func:`dataset_stats` and :func:`caption_stats`
(:mod:`cen.textstats`). Any other ``DataFrame -> DataFrame`` function runs with
:func:`run_stage`; :func:`reduce_partitions` folds any summary with bounded memory.

Modules: :mod:`~cen.scale.cluster` (where it runs: :func:`local_cluster`, :func:`connect`),
:mod:`~cen.scale.partitions` (the engine: :class:`Partition`, :func:`run_partition`,
:func:`run_stage`, :func:`read_stage`, :func:`merge_stage`), :mod:`~cen.scale.reduce`
(:func:`plan_chunks`, :func:`reduce_partitions`, :func:`dask_frame`) and
:mod:`~cen.scale.stages` (one adapter per pipeline stage). Every name is importable from
``cen.scale``.
"""

from cen.scale.cluster import (
    DASK_TRIM_DEFAULT, TRIM_ENV, ClientLike, connect, dashboard_link, local_cluster, machine_workers,
)
from cen.scale.partitions import (
    META_KEY, PART_GLOB, PLAN_FILE, SCALE_VERSION, Partition, PartitionMeta, PartitionResult, ScaleError, Stage,
    StageRun, check_tiles, merge_stage, partition_files, plan_partitions, read_partition_meta, read_stage,
    run_partition, run_stage, write_partition,
)
from cen.scale.reduce import Chunk, dask_frame, plan_chunks, reduce_chunk, reduce_partitions
from cen.scale.stages import (
    COMPLETE_STATUSES, build_sample_partition, build_samples, caption_stats, dataset_stats, estimate_cost,
    generate_shard, generate_sharded, merge_caption_stats, run_stats,
)

__all__ = [
    "COMPLETE_STATUSES", "DASK_TRIM_DEFAULT", "META_KEY", "PART_GLOB", "PLAN_FILE", "SCALE_VERSION", "TRIM_ENV",
    "Chunk", "ClientLike", "Partition", "PartitionMeta", "PartitionResult", "ScaleError", "Stage", "StageRun",
    "build_sample_partition", "build_samples", "caption_stats", "check_tiles", "connect", "dashboard_link",
    "dask_frame", "dataset_stats", "estimate_cost", "generate_shard", "generate_sharded", "local_cluster",
    "machine_workers", "merge_caption_stats", "merge_stage", "partition_files", "plan_partitions", "plan_chunks",
    "read_partition_meta", "read_stage", "reduce_chunk", "reduce_partitions", "run_partition", "run_stage",
    "run_stats", "write_partition",
]
