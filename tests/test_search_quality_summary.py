"""The search-quality bench's report (fast): medians, the per-task tally, the pooled test of seed noise and
--merge's refusal of a search measured twice, on records made up so the right answer is known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.bench_search_quality import merged, summarise
from benchmarks.search_runners import PEER


def _records(ours: float, theirs: float, tasks: int = 10, seeds: int = 1) -> list[dict]:
    made = []
    for task in range(tasks):
        for seed in range(seeds):
            for runner, regret in (("kerasweep", ours + task / 100), (PEER, theirs + task / 100)):
                made.append({"runner": runner, "task": task, "seed": seed, "budget": 10, "regret": regret})
    return made


def test_a_runner_lower_on_every_pair_is_lower_beyond_seed_noise() -> None:
    summary = summarise(_records(0.1, 0.3), ["kerasweep", PEER], [10])
    # Rule: the medians are the runners' own, over tasks and seeds
    assert summary["median_regret"]["kerasweep"][10] == pytest.approx(0.145)
    assert summary["median_regret"][PEER][10] == pytest.approx(0.345)
    # Rule: one seed per task cannot decide a task (ties), but its median is lower on every one
    assert summary["against_peer"]["kerasweep"]["10"] == {"win": 0, "loss": 0, "tie": 10, "median_lower": 10}
    # Rule: pooled over the 10 (task, seed) pairs, the difference is beyond seed noise
    (row,) = summary["pooled"]
    assert (row["runner"], row["against"], row["pairs"], row["lower"], row["higher"]) == ("kerasweep", PEER, 10, 10, 0)
    assert row["p"] < 0.05 and row["verdict"] == "lower"
    # Rule: the verdict follows the test's rank sums, not the count of pairs: a few large losses outweigh
    # many small wins
    records = _records(0.2, 0.2, tasks=40)
    for record in records:
        if record["runner"] == "kerasweep":
            record["regret"] += -0.01 if record["task"] < 21 else 0.5
    (row,) = summarise(records, ["kerasweep", PEER], [10])["pooled"]
    assert (row["lower"], row["higher"], row["verdict"]) == (21, 19, "higher") and row["p"] < 0.05


def test_equal_runners_are_within_noise_and_a_budget_not_measured_is_none() -> None:
    summary = summarise(_records(0.2, 0.2), ["kerasweep", PEER], [10, 30])
    assert summary["median_regret"]["kerasweep"][30] is None  # not measured at 30: no figure, not 0
    assert summary["pooled"][0]["p"] == 1.0 and summary["pooled"][0]["verdict"] == "within seed noise"


def test_merge_refuses_the_same_search_twice(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"results": _records(0.1, 0.3, tasks=2), "not_run": {"dehb": "not installed"}}))
    second.write_text(json.dumps({"results": _records(0.1, 0.3, tasks=3)[4:]}))  # task 2 only
    records, not_run = merged([first, second])
    assert len(records) == 6 and not_run == {"dehb": "not installed"}
    with pytest.raises(SystemExit, match="already in an earlier file"):
        merged([first, first])
