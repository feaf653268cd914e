"""A CSV as people download it, made by the tests: text and boolean categories, `NA` cells in numeric and
text columns, pandas' index column (`Unnamed: 0`), an integer date, and a label that the columns decide."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def messy_frame(rows: int = 600, seed: int = 0, rare: float | None = None) -> pd.DataFrame:
    """Rows whose `label` follows from `island`, `flipper` and `member` (learnable, not trivial); with `rare`,
    a binary `label` whose positive share is about `rare`. Sorted by label, as files often are."""
    rng = np.random.default_rng(seed)
    island = rng.choice(["Biscoe", "Dream", "Torgersen"], rows)
    flipper = rng.normal(200, 15, rows).round(1)
    member = rng.random(rows) < 0.5
    score = (island == "Dream") * 1.5 + (flipper - 200) / 10 + member * 1.0 + rng.normal(0, 0.3, rows)
    if rare is not None:
        label = np.where(score > np.quantile(score, 1 - rare), "yes", "no")
    else:
        label = np.select([score < 0.3, score < 1.6], ["Adelie", "Chinstrap"], "Gentoo")
    frame = pd.DataFrame({
        "island": island, "flipper": flipper, "member": member, "visits": rng.integers(0, 40, rows),
        "joined": rng.integers(2015, 2024, rows) * 10000 + rng.integers(1, 13, rows) * 100 + rng.integers(1, 28, rows),
        "label": label,
    })
    frame.loc[rng.random(rows) < 0.08, "flipper"] = np.nan
    frame.loc[rng.random(rows) < 0.08, "island"] = np.nan
    return frame.sort_values("label", kind="stable").reset_index(drop=True)


def write_messy_csv(path: Path, **kwargs: object) -> Path:
    """The frame as pandas' default `to_csv()` writes it: with its index as an unnamed first column."""
    messy_frame(**kwargs).to_csv(path)
    return path
