"""Pixel counts of label maps per region and class: validation, the region layout, the kernels.

A label map is a 2-D array of ChatEarthNet indices 0-11 (``uint8``; 0 = background). The row and
column cuts ``h//4, h//2, 3h//4`` (same for the width) split a map into 4 x 4 cells; each of the
six regions (:data:`cen.landcover.REGIONS`: the whole map, the four quadrants, the overlapping middle) is a
union of cells, so one histogram of ``cell * 12 + class`` per map gives the ``(16, 12)`` cell
counts, and one matrix product (:data:`REGION_OF_CELL`) turns them into the ``(6, 12)`` region
counts.

Two kernels compute the histogram (:func:`cell_counts`): a small numba kernel (numba is a
dependency; used by default) and plain ``np.bincount`` (used with ``CEN_STATS_NUMBA=0`` or
without numba, and as the reference the kernel is tested against). ``benchmarks/bench_stats.py``
measures both in one run and keeps the numba kernel only while it pays (RESULT
``stats_numba_kernel_speedup``).
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from cen.landcover import N_INDICES, REGION_SLUGS, REGIONS, region_boxes

__all__ = ["REGIONS", "REGION_SLUGS", "REGION_OF_CELL", "LabelError", "as_label_stack", "cell_counts",
           "counts_of_stack", "region_boxes", "region_counts", "region_sizes"]

N_CELLS = 16
"""Cells of the 4 x 4 grid a map is cut into (row band * 4 + column band)."""

KERNELS = ("numba", "bincount")
"""Names of the counting kernels :func:`cell_counts` accepts."""


def _region_of_cell() -> np.ndarray:
    out = np.zeros((len(REGIONS), N_CELLS), dtype=np.int64)
    for rb in range(4):
        for cb in range(4):
            cell = rb * 4 + cb
            out[0, cell] = 1
            out[1 + (rb >= 2) * 2 + (cb >= 2), cell] = 1
            if 1 <= rb <= 2 and 1 <= cb <= 2:
                out[5, cell] = 1
    out.flags.writeable = False
    return out


REGION_OF_CELL: np.ndarray = _region_of_cell()
"""``(6, 16)`` int64: ``REGION_OF_CELL[r, cell] = 1`` if the cell belongs to region ``r``."""


class LabelError(ValueError):
    """A label map is not a valid stack of ChatEarthNet indices (names the map and the problem)."""


def as_label_stack(labels: np.ndarray, *, what: str = "labels") -> np.ndarray:
    """Check ``labels`` and return it as a C-contiguous ``uint8`` stack of shape ``(N, H, W)``.

    Accepts ``(H, W)`` (one map) or ``(N, H, W)``; integer dtype; values 0-11; ``H, W >= 2``
    (so that every region has pixels). Raises :class:`TypeError` / :class:`LabelError` naming
    ``what``, the map index and the first bad pixel.
    """
    arr = np.asarray(labels)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{what}: label maps must hold integer ChatEarthNet indices, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise LabelError(f"{what}: expected a 2-D (H, W) label map or a 3-D (N, H, W) stack, got shape {arr.shape}")
    if arr.shape[1] < 2 or arr.shape[2] < 2:
        raise LabelError(f"{what}: label maps must be at least 2x2 pixels, got {arr.shape[1]}x{arr.shape[2]}")
    if arr.size:
        too_big = int(arr.max()) >= N_INDICES
        if too_big or (arr.dtype.kind == "i" and int(arr.min()) < 0):
            bad = (arr < 0) | (arr >= N_INDICES)
            n, i, j = (int(v) for v in np.argwhere(bad)[0])
            raise LabelError(
                f"{what}: map {n} has value {int(arr[n, i, j])} at pixel (row {i}, col {j}); "
                f"ChatEarthNet indices are 0-11 (convert WorldCover codes with cen.landcover.codes_to_indices)"
            )
    return np.ascontiguousarray(arr, dtype=np.uint8)


@lru_cache(maxsize=32)
def _cell_codes(h: int, w: int) -> np.ndarray:
    """``(H, W)`` uint8 map of ``cell * 12`` where cell = row band * 4 + column band."""
    rows = np.zeros(h, dtype=np.uint8)
    for cut in (h // 4, h // 2, 3 * h // 4):
        rows[cut:] += 1
    cols = np.zeros(w, dtype=np.uint8)
    for cut in (w // 4, w // 2, 3 * w // 4):
        cols[cut:] += 1
    codes = ((rows[:, None] * 4 + cols[None, :]) * N_INDICES).astype(np.uint8)
    codes.flags.writeable = False
    return codes


@lru_cache(maxsize=32)
def _band_codes(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """int64 ``(H,)`` row-band part and ``(W,)`` column-band part of :func:`_cell_codes`."""
    codes = _cell_codes(h, w).astype(np.int64)
    return np.ascontiguousarray(codes[:, 0]), np.ascontiguousarray(codes[0] - codes[0, 0])


def _count_pixels(stack, row_base, col_code, out):  # pragma: no cover - compiled by numba
    """out[t, row_base[i] + col_code[j] + stack[t, i, j]] += 1 over all pixels (numba source).

    Four histograms break the store-to-load dependency between neighbouring pixels of a class.
    """
    n, h, w = stack.shape
    nbins = out.shape[1]
    acc = np.zeros((4, nbins), np.int64)
    for t in range(n):
        acc[:] = 0
        for i in range(h):
            base = row_base[i]
            row = stack[t, i]
            j = 0
            while j + 4 <= w:
                acc[0, base + col_code[j] + row[j]] += 1
                acc[1, base + col_code[j + 1] + row[j + 1]] += 1
                acc[2, base + col_code[j + 2] + row[j + 2]] += 1
                acc[3, base + col_code[j + 3] + row[j + 3]] += 1
                j += 4
            while j < w:
                acc[0, base + col_code[j] + row[j]] += 1
                j += 1
        for k in range(nbins):
            out[t, k] = acc[0, k] + acc[1, k] + acc[2, k] + acc[3, k]


_KERNEL: list = []


def numba_kernel():
    """The compiled histogram kernel, or None without numba. numba is imported on first use only
    (it costs ~150 MB per process), and the compiled code is cached on disk."""
    if not _KERNEL:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba is a dependency, but keep working without it
            _KERNEL.append(None)
        else:
            _KERNEL.append(numba.njit(nogil=True, cache=True)(_count_pixels))
    return _KERNEL[0]


def default_kernel() -> str:
    """The kernel :func:`cell_counts` uses: ``"numba"`` unless ``CEN_STATS_NUMBA=0`` or numba is missing."""
    if os.environ.get("CEN_STATS_NUMBA", "1") != "0" and numba_kernel() is not None:
        return "numba"
    return "bincount"


def cell_counts(stack: np.ndarray, kernel: str | None = None) -> np.ndarray:
    """``(N, 16, 12)`` int64 pixel counts per cell and class of a validated ``(N, H, W)`` uint8 stack.

    ``kernel``: ``"numba"`` or ``"bincount"`` (default :func:`default_kernel`); both give
    identical counts.
    """
    kernel = default_kernel() if kernel is None else kernel
    n, h, w = stack.shape
    if kernel == "numba":
        compiled = numba_kernel()
        if compiled is None:
            raise RuntimeError("cell_counts: the numba kernel needs numba, which is not installed")
        row_base, col_code = _band_codes(h, w)
        out = np.empty((n, N_CELLS * N_INDICES), dtype=np.int64)
        compiled(stack, row_base, col_code, out)
        return out.reshape(n, N_CELLS, N_INDICES)
    if kernel != "bincount":
        raise ValueError(f"cell_counts: unknown kernel {kernel!r}; expected one of {', '.join(KERNELS)}")
    codes = _cell_codes(h, w)
    out = np.empty((n, N_CELLS, N_INDICES), dtype=np.int64)
    key = np.empty((h, w), dtype=np.uint8)
    flat = out.reshape(n, -1)
    for i in range(n):
        np.add(stack[i], codes, out=key)
        flat[i] = np.bincount(key.ravel(), minlength=N_CELLS * N_INDICES)
    return out


def counts_of_stack(stack: np.ndarray, kernel: str | None = None) -> np.ndarray:
    """``(N, 6, 12)`` region counts of a validated ``(N, H, W)`` uint8 stack (no checks)."""
    if not len(stack):
        return np.zeros((0, len(REGIONS), N_INDICES), np.int64)
    return np.matmul(REGION_OF_CELL, cell_counts(stack, kernel))


def region_counts(labels: np.ndarray) -> np.ndarray:
    """Pixel counts per region and class.

    ``labels``: ``(H, W)`` or ``(N, H, W)`` integer ChatEarthNet indices 0-11.
    Returns int64 counts of shape ``(6, 12)`` (one map) or ``(N, 6, 12)``: axis -2 in
    :data:`REGIONS` order (whole, top left, top right, bottom left, bottom right, middle),
    axis -1 by class index (0 = background). Regions are the release's slices
    ``[:h//2, :w//2]`` ... and the middle ``[h//4:3*h//4, w//4:3*w//4]``.
    """
    single = np.ndim(labels) == 2
    counts = counts_of_stack(as_label_stack(labels))
    return counts[0] if single else counts


def region_sizes(h: int, w: int) -> np.ndarray:
    """Pixels per region (:data:`REGIONS` order) of an ``h`` x ``w`` map, int64 ``(6,)``."""
    rows = [h, h // 2, h // 2, h - h // 2, h - h // 2, 3 * h // 4 - h // 4]
    cols = [w, w // 2, w - w // 2, w // 2, w - w // 2, 3 * w // 4 - w // 4]
    return np.array(rows, dtype=np.int64) * np.array(cols, dtype=np.int64)
