"""Per-tile facts the questions are asked about, computed once for a whole stack of label maps.

:func:`tile_features` turns an ``(N, H, W)`` stack of ChatEarthNet indices into
:class:`TileFeatures`: the region counts of :func:`cen.stats.region_counts` (reused, not
re-implemented) plus what the counts cannot say:

* ``adjacent[n, a, b]``: classes ``a`` and ``b`` touch (a pixel of one has a 4-neighbour of the other);
* ``row_sum2`` / ``col_sum2``: twice the sums of the row and column indices of each class's
  pixels (centroids are ``sum2 / (2 * count)``; doubled so every value is an exact integer);
* the 8-connected components of each class: ``n_patches`` (components of at least
  :data:`~cen.stats.THRESHOLD` pixels), ``largest`` and ``second`` (sizes of the two largest)
  and ``bbox`` of the largest, ``[x0, y0, x1, y1]`` with ``x`` the column, ``(0, 0)`` the
  top-left pixel and the ends exclusive.

Background (index 0) has no components and touches nothing. The work is one compiled pass per
map over its runs (maximal horizontal stretches of one class): union-find joins runs of the
same class that overlap or touch diagonally in the previous row, and runs of different classes
that share a column with the previous row are adjacent; a land-cover map has a few thousand
runs, not 65,536 pixels. Without numba the same facts come from ``scipy.ndimage``, map by map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cen.landcover import N_INDICES
from cen.stats import THRESHOLD, as_label_stack, region_counts


@dataclass
class TileFeatures:
    """Facts of ``N`` label maps (all arrays have ``N`` rows; classes by ChatEarthNet index 0-11)."""

    counts: np.ndarray
    """``(N, 6, 12)`` int64 pixel counts per region (:data:`cen.stats.REGIONS` order) and class."""
    adjacent: np.ndarray
    """``(N, 12, 12)`` bool, symmetric: the two classes touch (4-neighbourhood)."""
    row_sum2: np.ndarray
    """``(N, 12)`` int64: 2 x the sum of the row index over the class's pixels."""
    col_sum2: np.ndarray
    """``(N, 12)`` int64: 2 x the sum of the column index over the class's pixels."""
    n_patches: np.ndarray
    """``(N, 12)`` int32: 8-connected components of at least ``THRESHOLD`` pixels."""
    largest: np.ndarray
    """``(N, 12)`` int32: pixels of the largest 8-connected component (0 if absent)."""
    second: np.ndarray
    """``(N, 12)`` int32: pixels of the second-largest component (0 if fewer than two)."""
    bbox: np.ndarray
    """``(N, 12, 4)`` int32 ``[x0, y0, x1, y1]`` of the largest component (ends exclusive)."""
    height: np.ndarray
    """``(N,)`` int32 map heights."""
    width: np.ndarray
    """``(N,)`` int32 map widths."""

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    def take(self, rows: np.ndarray) -> "TileFeatures":
        """The features of a subset of maps (``rows``: indices or a boolean mask)."""
        return TileFeatures(**{k: getattr(self, k)[rows] for k in self.__dataclass_fields__})

    @staticmethod
    def empty(n: int) -> "TileFeatures":
        """``n`` maps without labels: all counts zero (used for tiles with no label map)."""
        k = N_INDICES
        return TileFeatures(
            counts=np.zeros((n, 6, k), np.int64), adjacent=np.zeros((n, k, k), bool),
            row_sum2=np.zeros((n, k), np.int64), col_sum2=np.zeros((n, k), np.int64),
            n_patches=np.zeros((n, k), np.int32), largest=np.zeros((n, k), np.int32),
            second=np.zeros((n, k), np.int32), bbox=np.zeros((n, k, 4), np.int32),
            height=np.zeros(n, np.int32), width=np.zeros(n, np.int32),
        )

    @staticmethod
    def concat(parts: list["TileFeatures"]) -> "TileFeatures":
        """Stack the features of several batches (in order)."""
        if not parts:
            return TileFeatures.empty(0)
        return TileFeatures(**{k: np.concatenate([getattr(p, k) for p in parts])
                               for k in TileFeatures.__dataclass_fields__})


def _runs_kernel(stack, words, threshold, adj, rsum2, csum2, npatch, largest, second, bbox):  # pragma: no cover
    """Run-based union-find over every map of ``stack`` (numba source; see the module docstring).

    ``words`` is ``stack`` viewed as uint64 (8 pixels a word) when the width is a multiple of 8,
    else an empty array: long runs are then extended a word at a time."""
    n, h, w = stack.shape
    wide = words.shape[0] == n
    cap = h * w
    r_start = np.empty(cap, np.int32)
    r_end = np.empty(cap, np.int32)
    r_cls = np.empty(cap, np.uint8)
    r_row = np.empty(cap, np.int32)
    parent = np.empty(cap, np.int32)
    size = np.empty(cap, np.int32)
    x0 = np.empty(cap, np.int32)
    x1 = np.empty(cap, np.int32)
    y0 = np.empty(cap, np.int32)
    y1 = np.empty(cap, np.int32)
    first = np.empty(h + 1, np.int32)
    k = adj.shape[1]
    for t in range(n):
        nr = 0
        for i in range(h):
            first[i] = nr
            row = stack[t, i]
            j = 0
            while j < w:
                c = row[j]
                s = j
                j += 1
                if wide:
                    while j < w and (j & 7) != 0 and row[j] == c:
                        j += 1
                    if (j & 7) == 0:
                        pattern = np.uint64(c) * np.uint64(0x0101010101010101)
                        wrow = words[t, i]
                        while j < w and wrow[j >> 3] == pattern:
                            j += 8
                while j < w and row[j] == c:
                    j += 1
                r_start[nr] = s
                r_end[nr] = j - 1
                r_cls[nr] = c
                r_row[nr] = i
                parent[nr] = nr
                if s > 0:
                    pc = r_cls[nr - 1]
                    if pc != 0 and c != 0:
                        adj[t, pc, c] = True
                        adj[t, c, pc] = True
                if c != 0:
                    ln = j - s
                    rsum2[t, c] += 2 * i * ln
                    csum2[t, c] += (s + j - 1) * ln
                nr += 1
        first[h] = nr
        for i in range(1, h):
            pa = first[i - 1]
            a_end = first[i]
            for b in range(first[i], first[i + 1]):
                s = r_start[b]
                e = r_end[b]
                c = r_cls[b]
                while pa < a_end and r_end[pa] < s - 1:
                    pa += 1
                q = pa
                while q < a_end and r_start[q] <= e + 1:
                    cq = r_cls[q]
                    if cq == c:
                        if c != 0:
                            ra = b
                            while parent[ra] != ra:
                                parent[ra] = parent[parent[ra]]
                                ra = parent[ra]
                            rb = q
                            while parent[rb] != rb:
                                parent[rb] = parent[parent[rb]]
                                rb = parent[rb]
                            if ra != rb:
                                if ra < rb:
                                    parent[rb] = ra
                                else:
                                    parent[ra] = rb
                    elif c != 0 and cq != 0 and r_start[q] <= e and r_end[q] >= s:
                        adj[t, c, cq] = True
                        adj[t, cq, c] = True
                    q += 1
        for r in range(nr):
            size[r] = 0
        for r in range(nr):
            if r_cls[r] == 0:
                continue
            root = r
            while parent[root] != root:
                root = parent[root]
            parent[r] = root
            ln = r_end[r] - r_start[r] + 1
            if size[root] == 0:
                x0[root] = r_start[r]
                x1[root] = r_end[r] + 1
                y0[root] = r_row[r]
                y1[root] = r_row[r] + 1
            else:
                if r_start[r] < x0[root]:
                    x0[root] = r_start[r]
                if r_end[r] + 1 > x1[root]:
                    x1[root] = r_end[r] + 1
                if r_row[r] + 1 > y1[root]:
                    y1[root] = r_row[r] + 1
            size[root] += ln
        for r in range(nr):
            if parent[r] != r or r_cls[r] == 0:
                continue
            c = r_cls[r]
            sz = size[r]
            if sz >= threshold:
                npatch[t, c] += 1
            if sz > largest[t, c]:
                second[t, c] = largest[t, c]
                largest[t, c] = sz
                bbox[t, c, 0] = x0[r]
                bbox[t, c, 1] = y0[r]
                bbox[t, c, 2] = x1[r]
                bbox[t, c, 3] = y1[r]
            elif sz > second[t, c]:
                second[t, c] = sz
    return k


_KERNEL: list = []


def _kernel():
    """The compiled :func:`_runs_kernel` (cached on disk), or None without numba."""
    if not _KERNEL:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba is a dependency
            _KERNEL.append(None)
        else:
            _KERNEL.append(numba.njit(nogil=True, cache=True)(_runs_kernel))
    return _KERNEL[0]


def _component_features_scipy(stack: np.ndarray, out: dict[str, np.ndarray]) -> None:  # pragma: no cover - no numba
    """The same facts as the kernel with ``scipy.ndimage``, one map and class at a time."""
    from scipy import ndimage

    eight = np.ones((3, 3), bool)
    for t, tile in enumerate(stack):
        for a, b in ((tile[:, :-1], tile[:, 1:]), (tile[:-1, :], tile[1:, :])):
            diff = (a != b) & (a != 0) & (b != 0)
            out["adjacent"][t, a[diff], b[diff]] = True
            out["adjacent"][t, b[diff], a[diff]] = True
        rows, cols = np.indices(tile.shape)
        for c in range(1, N_INDICES):
            mask = tile == c
            if not mask.any():
                continue
            out["row_sum2"][t, c] = 2 * int(rows[mask].sum())
            out["col_sum2"][t, c] = 2 * int(cols[mask].sum())
            lab, n = ndimage.label(mask, structure=eight)
            sizes = np.bincount(lab.ravel())[1:]
            out["n_patches"][t, c] = int((sizes >= THRESHOLD).sum())
            order = np.argsort(-sizes, kind="stable")
            out["largest"][t, c] = sizes[order[0]]
            out["second"][t, c] = sizes[order[1]] if n > 1 else 0
            ys, xs = np.nonzero(lab == order[0] + 1)
            out["bbox"][t, c] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def tile_features(labels: np.ndarray) -> TileFeatures:
    """:class:`TileFeatures` of ``(H, W)`` or ``(N, H, W)`` ChatEarthNet indices (validated by
    :func:`cen.stats.as_label_stack`: integer values 0-11, maps at least 2 x 2)."""
    stack = as_label_stack(labels)
    n, h, w = stack.shape
    feats = TileFeatures.empty(n)
    feats.counts = region_counts(stack) if n else feats.counts
    feats.height[:] = h
    feats.width[:] = w
    if n == 0:
        return feats
    kernel = _kernel()
    if kernel is not None:
        words = stack.view(np.uint64) if w % 8 == 0 else np.zeros((0, 1, 1), np.uint64)
        kernel(stack, words, THRESHOLD, feats.adjacent, feats.row_sum2, feats.col_sum2, feats.n_patches,
               feats.largest, feats.second, feats.bbox)
    else:  # pragma: no cover - numba is a dependency
        _component_features_scipy(stack, feats.__dict__)
    return feats
