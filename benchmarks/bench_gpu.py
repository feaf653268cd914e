"""Trials packed per GPU: the same kerasweep sweep with 1, 4 and 8 trials per GPU, and on the CPU cores.

    KERAS_BACKEND=jax python benchmarks/bench_gpu.py --store /tmp/gpu --space cnn --packings 1,4,8 --cpu

Each run is the CLI as a user types it (`kerasweep sweep SPACE --trials-per-gpu K`, optuna engine), in a
fresh process with its own store; the clock starts when the process is spawned, so imports, worker start-up
and MLflow bookkeeping count. Reported per run: trials finished (complete + pruned) per hour of wall time,
the time from the command's start to the first epoch logged at or above the target (read from MLflow's
metric timestamps), the best value, and the most GPU memory one trial process held (nvidia-smi, sampled
every half second). `--cpu` adds the same sweep with no GPU visible (kerasweep's CPU default: one worker).
Results go to `<store>/bench/gpu-<space>.json` and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import write_results


class GpuMemory:
    """The most memory each process held on the GPU while the run lasted (MiB), sampled with nvidia-smi."""

    def __init__(self) -> None:
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, check=False).stdout
            for line in out.splitlines():
                pid, _, used = line.partition(",")
                if used.strip().isdigit():
                    self.peak[pid.strip()] = max(self.peak.get(pid.strip(), 0), int(used))
            self._stop.wait(0.5)

    def __enter__(self) -> Self:
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


def read_store(store: Path, metric: str, target: float, started_ms: float) -> dict[str, Any]:
    """Trials by state, the best value, and seconds from the start to the first epoch at or above target."""
    db = sqlite3.connect(store / "mlflow.db")
    states = dict(db.execute("select s.value, count(*) from tags s join tags r on s.run_uuid = r.run_uuid "
                             "where s.key = 'kerasweep.state' and r.key = 'kerasweep.role' and r.value = 'trial' "
                             "group by s.value"))
    first_epoch = db.execute("select min(timestamp) from metrics where key = ?", (metric,)).fetchone()[0]
    reached = db.execute("select min(timestamp) from metrics where key = ? and value >= ?", (metric, target)).fetchone()[0]
    best = db.execute("select max(value) from metrics where key = ?", (metric,)).fetchone()[0]
    precision = [v for (v,) in db.execute("select distinct value from tags where key = 'kerasweep.precision'")]
    backend = [v for (v,) in db.execute("select distinct value from tags where key = 'kerasweep.backend'")]
    return {"states": states, "best": best, "precision": precision, "backend": backend,
            "first_epoch_s": None if first_epoch is None else (first_epoch - started_ms) / 1000,
            "to_target_s": None if reached is None else (reached - started_ms) / 1000}


def run(space: str, store: Path, label: str, flags: list[str], env: dict[str, str], target: float,
        trials: int | None, timeout: float) -> dict[str, Any]:
    shutil.rmtree(store, ignore_errors=True)
    store.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "kerasweep.search.cli", "sweep", space, "--store", str(store), "--name", "bench",
               *(["--trials", str(trials)] if trials else []), *flags]
    started = time.time()
    timed_out = False
    with GpuMemory() as memory, open(store.with_suffix(".log"), "w+") as log:
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "COLUMNS": "200", **env}, stdout=log,
                                   stderr=subprocess.STDOUT, text=True)  # COLUMNS: the first line unwrapped
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:  # stop it as Ctrl-C does: running trials end, what ran is counted
            timed_out = True
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        wall = time.time() - started
        log.seek(0)
        output = log.read()
    found = read_store(store, "val_accuracy", target, started * 1000) if (store / "mlflow.db").exists() else {}
    finished = sum(n for state, n in found.get("states", {}).items() if state in ("complete", "pruned"))
    peaks = sorted(memory.peak.values())
    row = {"run": label, "flags": flags, "rc": process.returncode, "timed_out": timed_out, "wall_s": round(wall, 1),
           "finished": finished,
           "trials_per_hour": round(finished / wall * 3600) if wall else None,
           "gpu_mib_per_trial": peaks[-1] if peaks else None, "gpu_processes": len(peaks), **found,
           "first_line": next(iter(output.splitlines()), "")}
    if process.returncode:
        row["output"] = output[-2000:]
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=Path("runs"))
    parser.add_argument("--space", default="cnn")
    parser.add_argument("--packings", default="1,4,8", help="trials per GPU to compare")
    parser.add_argument("--cpu", action="store_true", help="also run the sweep with no GPU visible")
    parser.add_argument("--trials", type=int, help="budget (default: the space's)")
    parser.add_argument("--target", type=float, default=0.975)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    rows = []
    for per_gpu in [int(k) for k in args.packings.split(",") if k]:
        rows.append(run(args.space, args.store / f"{Path(args.space).stem}-k{per_gpu}", f"{per_gpu} per GPU",
                        ["--trials-per-gpu", str(per_gpu)], {}, args.target, args.trials, args.timeout))
    if args.cpu:
        rows.append(run(args.space, args.store / f"{Path(args.space).stem}-cpu", "CPU cores, 1 worker", [],
                        {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}, args.target, args.trials, args.timeout))
    out = write_results(args.store, f"gpu-{Path(args.space).stem}", {"space": args.space, "target": args.target,
                                                                      "backend": os.environ.get("KERAS_BACKEND"),
                                                                      "rows": rows})
    lines = [f"| {args.space} | trials/h | to val_accuracy >= {args.target} | best | wall | GPU MiB per trial |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        to_target = f"{r['to_target_s']:.0f} s" if r.get("to_target_s") is not None else "not reached"
        memory = f"{r['gpu_mib_per_trial']}" if r["gpu_mib_per_trial"] else "-"
        stopped = ", stopped at the time limit" if r["timed_out"] else ""
        lines.append(f"| {r['run']} | {r['trials_per_hour']} ({r['finished']} in {r['wall_s']:.0f} s{stopped}) | {to_target} "
                     f"| {r.get('best') or 0:.4f} | {r['wall_s']:.0f} s | {memory} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
