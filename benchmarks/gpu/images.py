"""Synthetic 32x32 colour images for the GPU benchmark: a bigger model than digits, made on the spot (no download).

Each of 10 classes is a fixed random pattern of coloured 8x8 blocks, shown faintly under pixel noise and shifted
by up to 8 pixels, so a convolutional network learns it within a few epochs.
"""

from __future__ import annotations

import numpy as np


def images(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` images (uint8 range, float32) and their class (0..9), for `data: benchmarks.gpu.images:images`."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(10, 5, 5, 3)).astype("float32")  # smooth patterns: 5x5 blocks of 8x8 pixels
    templates = coarse.repeat(8, axis=1).repeat(8, axis=2)
    y = rng.integers(0, 10, size=n)
    dx, dy = rng.integers(0, 9, size=n), rng.integers(0, 9, size=n)
    windows = np.lib.stride_tricks.sliding_window_view(templates, (32, 32), axis=(1, 2))  # (10, 9, 9, 3, 32, 32)
    x = windows[y, dy, dx].transpose(0, 2, 3, 1)
    x = 0.35 * x + rng.standard_normal(size=x.shape, dtype=np.float32)
    return np.clip(127.5 + 40.0 * x, 0, 255).astype("float32"), y.astype("int64")
