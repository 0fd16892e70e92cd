"""Land-cover statistics of label maps: ChatEarthNet's Algorithm 1, exact and vectorised.

A label map is a 2-D array of ChatEarthNet indices 0-11 (``uint8``; 0 = background). For each
map this package computes class counts for the whole map and five regions (:data:`REGIONS`), and
from those counts the two context blocks the release fed to the language models (the GPT-3.5
block and the GPT-4V per-class and per-region blocks), in two modes: ``compat=True`` reproduces
the release's scripts byte for byte, quirks included; the default mode fixes the bugs.

Modules:

* :mod:`~cen.stats.counting` -- validation, the region layout, the counting kernels
  (:func:`region_counts`);
* :mod:`~cen.stats.contexts` -- the GPT-3.5 and GPT-4V context writers (:func:`gpt35_context`,
  :func:`gpt4v_context`; their tie rules and what the default mode changes);
* :mod:`~cen.stats.table` -- the tidy ``stats.parquet`` table (:func:`stats_table`);
* :mod:`~cen.stats.io` -- the stage's files: label maps of the eligible tiles in,
  ``stats.parquet`` and its failures table out (:func:`run_stats_stage`, :func:`compute_stats`,
  :func:`stats_table_from_tiles`, :func:`read_stats`);
* :mod:`~cen.stats.dataset` -- :class:`DatasetStats`, dataset-level statistics in bounded memory;
* :mod:`~cen.stats.views` -- what notebook 02 shows (:func:`plot_regions`,
  :func:`region_class_counts`, :func:`context_differences`, :func:`plot_dataset_stats`, ...).
"""

from cen.stats.contexts import (
    DEFAULT_SEED, NOUNS, SIZE_WORDS, THRESHOLD, draw_noun, gpt4v_context, gpt4v_texts, gpt35_context, gpt35_texts,
    unlabelled_sentence,
)
from cen.stats.counting import (
    REGION_SLUGS, REGIONS, LabelError, as_label_stack, region_boxes, region_counts, region_sizes,
)
from cen.stats.dataset import DatasetStats
from cen.stats.io import (
    StatsError, StatsRun, compute_stats, label_paths, read_label_map, read_stats, run_stats_stage, stats_rows,
    stats_table_from_tiles, tiles_workdir, write_stats,
)
from cen.stats.table import (
    CLASS_SLUGS, CONTEXT_COLUMNS, COUNT_COLUMNS, SHARE_COLUMNS, STATS_REQUIRED, STATS_VERSION, counts_from_table,
    stats_table, tile_rng,
)
from cen.stats.views import (
    OVERVIEW_COLUMNS, REGION_COLOURS, REGION_OUTLINE, class_legend_handles, context_difference_examples, context_differences,
    format_contexts, plot_dataset_stats, plot_region_dominance, plot_regions, region_class_counts, region_dominance,
    stats_overview,
)

__all__ = [
    "CLASS_SLUGS", "CONTEXT_COLUMNS", "COUNT_COLUMNS", "DEFAULT_SEED", "DatasetStats", "LabelError", "NOUNS",
    "OVERVIEW_COLUMNS", "REGIONS", "REGION_COLOURS", "REGION_OUTLINE", "REGION_SLUGS", "SHARE_COLUMNS", "SIZE_WORDS", "STATS_REQUIRED",
    "STATS_VERSION", "StatsError", "StatsRun", "THRESHOLD", "as_label_stack", "class_legend_handles", "compute_stats",
    "context_difference_examples", "context_differences", "counts_from_table", "draw_noun", "format_contexts",
    "gpt35_context", "gpt35_texts", "gpt4v_context", "gpt4v_texts", "label_paths", "plot_dataset_stats",
    "plot_region_dominance", "plot_regions", "read_label_map", "read_stats", "region_boxes", "region_class_counts",
    "region_counts", "region_dominance", "region_sizes", "run_stats_stage", "stats_overview", "stats_rows", "stats_table", "stats_table_from_tiles",
    "tile_rng", "tiles_workdir", "unlabelled_sentence", "write_stats",
]
