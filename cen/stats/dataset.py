"""Dataset-level statistics over any number of tiles, in constant memory (:class:`DatasetStats`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cen.landcover import CLASSES, N_INDICES, class_names
from cen.stats.counting import REGIONS, as_label_stack, region_counts
from cen.stats.table import counts_from_table

_GPT35_NAMES = class_names("gpt35")


@dataclass
class DatasetStats:
    """Dataset-level statistics accumulated over batches of tiles, in constant memory.

    ``update`` takes ``(N, 6, 12)`` region counts (:func:`region_counts`); ``update_labels``
    takes label maps. Accumulators (int64, class index on the last axis):
    ``class_pixels`` (12,), pixels per class over all tiles; ``class_presence`` (12,), tiles
    with at least one pixel of the class; ``dominant`` (12,), tiles by their largest labelled
    class (index 0 = no labelled pixel); ``region_dominant`` (6, 12), the same per region.
    Ties for "largest" go to the lower class index. Merge partial results with ``merge``.
    """

    n_tiles: int = 0
    class_pixels: np.ndarray = field(default_factory=lambda: np.zeros(N_INDICES, np.int64))
    class_presence: np.ndarray = field(default_factory=lambda: np.zeros(N_INDICES, np.int64))
    dominant: np.ndarray = field(default_factory=lambda: np.zeros(N_INDICES, np.int64))
    region_dominant: np.ndarray = field(default_factory=lambda: np.zeros((len(REGIONS), N_INDICES), np.int64))

    def update(self, counts: np.ndarray) -> "DatasetStats":
        """Add tiles given their ``(N, 6, 12)`` (or one ``(6, 12)``) region counts."""
        counts = np.asarray(counts)
        if counts.ndim == 2:
            counts = counts[None]
        if counts.ndim != 3 or counts.shape[1:] != (len(REGIONS), N_INDICES):
            raise ValueError(f"DatasetStats.update: expected counts of shape (N, 6, 12), got {counts.shape}")
        if (counts < 0).any():
            raise ValueError("DatasetStats.update: negative pixel counts")
        counts = counts.astype(np.int64, copy=False)
        self.n_tiles += counts.shape[0]
        whole = counts[:, 0, :]
        self.class_pixels += whole.sum(axis=0)
        self.class_presence += (whole > 0).sum(axis=0)
        labelled = counts[:, :, 1:]
        dom = labelled.argmax(axis=2) + 1
        dom[labelled.max(axis=2) == 0] = 0
        for r in range(len(REGIONS)):
            self.region_dominant[r] += np.bincount(dom[:, r], minlength=N_INDICES)
        self.dominant[:] = self.region_dominant[0]
        return self

    def update_labels(self, labels: np.ndarray) -> "DatasetStats":
        """Add tiles given their label maps ``(N, H, W)``."""
        return self.update(region_counts(as_label_stack(labels)))

    def merge(self, other: "DatasetStats") -> "DatasetStats":
        """Add another accumulator's tiles to this one (for parallel runs)."""
        self.n_tiles += other.n_tiles
        self.class_pixels += other.class_pixels
        self.class_presence += other.class_presence
        self.region_dominant += other.region_dominant
        self.dominant[:] = self.region_dominant[0]
        return self

    @classmethod
    def from_table(cls, table: pd.DataFrame) -> "DatasetStats":
        """Accumulate a stats table's count columns."""
        return cls().update(counts_from_table(table))

    def class_frame(self) -> pd.DataFrame:
        """One row per class (background included): pixels, pixel share, tiles present, share
        of tiles present, tiles dominated, share of tiles dominated."""
        total = max(int(self.class_pixels.sum()), 1)
        n = max(self.n_tiles, 1)
        return pd.DataFrame(
            {
                "class_index": np.arange(N_INDICES),
                "class": list(_GPT35_NAMES),
                "pixels": self.class_pixels,
                "pixel_share": self.class_pixels / total,
                "tiles_present": self.class_presence,
                "presence_share": self.class_presence / n,
                "tiles_dominant": self.dominant,
                "dominant_share": self.dominant / n,
                "colour": ["#%02x%02x%02x" % c.colour for c in CLASSES],
            }
        )

    @property
    def n_classes_present(self) -> int:
        """Labelled classes (background excluded) with at least one pixel."""
        return int((self.class_pixels[1:] > 0).sum())

    def region_frame(self) -> pd.DataFrame:
        """Long table: region, class, tiles whose region is dominated by the class, share."""
        n = max(self.n_tiles, 1)
        rows = [
            (REGIONS[r], _GPT35_NAMES[c], int(self.region_dominant[r, c]), self.region_dominant[r, c] / n)
            for r in range(len(REGIONS))
            for c in range(N_INDICES)
        ]
        return pd.DataFrame(rows, columns=["region", "class", "tiles_dominant", "dominant_share"])
