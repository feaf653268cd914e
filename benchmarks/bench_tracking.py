"""What logging a trial's epochs costs the training thread: the embedded SQLite store against the team
service's MLflow server over HTTP (basic-auth, PostgreSQL), each written synchronously and through
kerasweep's Tracker (which queues a server's epoch writes in MLflow's asynchronous logging).

    python benchmarks/bench_tracking.py [--epochs 100] [--store runs]

It starts a real service (`kerasweep service up`) in a temporary folder and stops it afterwards. Per
configuration it prints milliseconds per epoch on the training thread, and the time until every epoch is
written (the Tracker's flush, as a trial's end waits for it). Then whole sweeps with training stubbed
out (`bench_bookkeeping.py`'s stub: three epochs a trial), so what is timed is the bookkeeping per trial:
trials per second on the embedded stores (SQLite for Optuna and MLflow) against the service's (Optuna on
its PostgreSQL, MLflow over HTTP).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import print_table, write_results  # noqa: E402 - after the path insert

METRICS = {"loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.75}


def measure(tracking_uri: str, epochs: int, asynchronous: bool) -> tuple[float, float]:
    """(ms per epoch on the calling thread, ms per epoch until all are written) for one trial run."""
    from kerasweep.search.tracking import Tracker

    tracker = Tracker(tracking_uri, queue_epochs=asynchronous)
    client = tracker.client
    experiment = client.create_experiment(f"bench-tracking-{time.time_ns()}")
    run_id = client.create_run(experiment).info.run_id
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        tracker.log_epoch(run_id, epoch, METRICS)
    queued = time.perf_counter() - started
    tracker.flush(run_id)
    written = time.perf_counter() - started
    assert len(client.get_metric_history(run_id, "val_accuracy")) == epochs  # every epoch arrived
    return queued / epochs * 1000, written / epochs * 1000


def sweep_rate(trials: int, tracking_uri: str | None, storage: str | None, name: str) -> dict[str, float]:
    """Trials per second of one stubbed sweep of `trials` trials, MLflow on, against these stores."""
    from benchmarks.bench_bookkeeping import kerasweep_optuna, summarise

    kept = os.environ.pop("MLFLOW_TRACKING_URI", None)
    if tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    try:
        with tempfile.TemporaryDirectory() as folder:
            spans, logged = kerasweep_optuna(trials, storage, True, Path(folder), name)
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        if kept:
            os.environ["MLFLOW_TRACKING_URI"] = kept
    assert logged == trials, f"{logged} trial runs logged of {trials}"  # every trial reached MLflow
    summary = summarise(spans)
    return {"trials": summary["trials"], "trials_per_s": summary["trials_per_s"],
            "ms_per_trial": 1000 / summary["trials_per_s"]}


def free_base() -> int:
    import random
    import socket

    for _ in range(100):
        base = random.randrange(20000, 40000)
        try:
            for port in range(base, base + 6):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no 6 free ports in a row")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--trials", type=int, default=50, help="trials of each stubbed whole sweep")
    parser.add_argument("--store", type=Path, default=Path("runs"))
    args = parser.parse_args()

    from kerasweep.search.quiet import import_keras_quietly, silence
    from kerasweep.search.service.layout import ServiceDir
    from kerasweep.search.service.manage import down, up

    silence()
    import_keras_quietly()  # the engine sets up TensorFlow's threads before its first trial
    scratch = Path(tempfile.mkdtemp(prefix="kbench-", dir="/tmp"))
    service = ServiceDir(scratch)  # the service's own folder: as root, PostgreSQL's user must enter it
    rows, results, sweeps = [], [], []
    try:
        up(service, "127.0.0.1", free_base())
        env = dict(line.split("=", 1) for line in service.client_env.read_text().splitlines() if "=" in line)
        os.environ.update({k: env[k] for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")})
        sqlite = f"sqlite:///{scratch / 'embedded.db'}"
        for label, uri, asynchronous in (("embedded SQLite", sqlite, False),
                                         ("service over HTTP, synchronous", env["MLFLOW_TRACKING_URI"], False),
                                         ("service over HTTP, kerasweep's Tracker (queued)",
                                          env["MLFLOW_TRACKING_URI"], True)):
            on_thread, until_written = measure(uri, args.epochs, asynchronous)
            rows.append([label, f"{on_thread:.1f}", f"{until_written:.1f}"])
            results.append({"store": label, "ms_per_epoch_on_thread": on_thread,
                            "ms_per_epoch_until_written": until_written, "epochs": args.epochs})
        for label, uri, storage in (("embedded: SQLite (Optuna and MLflow)", None, None),
                                    ("service: PostgreSQL (Optuna), MLflow over HTTP", env["MLFLOW_TRACKING_URI"],
                                     env["KERASWEEP_STORAGE"])):
            sweeps.append({"stores": label, **sweep_rate(args.trials, uri, storage, f"bench-{len(sweeps)}")})
    finally:
        if service.state_file.is_file():
            down(service)
        shutil.rmtree(scratch, ignore_errors=True)
    print_table(f"Logging {args.epochs} epochs of 4 metrics, one trial run", ["tracking store",
                "ms/epoch on the training thread", "ms/epoch until written"], rows)
    print_table(f"Whole sweeps of {args.trials} trials, training stubbed out (3 epochs a trial), MLflow on",
                ["stores", "trials/s", "ms per trial"],
                [[r["stores"], f"{r['trials_per_s']:.2f}", f"{r['ms_per_trial']:.0f}"] for r in sweeps])
    out = write_results(args.store, "tracking", {"results": results, "sweeps": sweeps})
    print(f"results: {out}")


if __name__ == "__main__":
    main()
