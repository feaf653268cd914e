"""Fresh clone to the first finished default sweep, side by side with the peer's install and script.

    make bench            # or: python benchmarks/bench_install.py --installers uv,pip

Each kerasweep row: `git clone` of this repository's HEAD (committed work only) into a temporary folder,
`make install INSTALLER=<installer>` there, then `make sweep` (the default cnn sweep: 20 trials x 15
epochs; --trials/--epochs make it smaller). The peer: a new virtual environment, `pip install optuna
tensorflow scikit-learn` at the versions constraints.txt pins, then `benchmarks/peer_optuna_script.py`
(Optuna's Keras example shaped like the default sweep). Installers' caches are off, as on a fresh machine;
--warm keeps them. Prints a table and writes JSON and a PNG under the store.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import print_table, write_results  # noqa: E402

INSTALLERS = ("uv", "pip")
PEER = "peer: pip install optuna tensorflow scikit-learn + a 30-line Optuna script"
GOAL_S = 180.0  # issue 16: fresh clone to the first finished default sweep in under 3 minutes
COLD = {"PIP_NO_CACHE_DIR": "1", "UV_NO_CACHE": "1"}


def _python() -> str:
    """The interpreter `make install` picks (python3.11, else python3)."""
    return shutil.which("python3.11") or shutil.which("python3") or sys.executable


def _env(warm: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI", "KERASWEEP_STORE", "MAKEFLAGS", "MAKELEVEL")}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore", **({} if warm else COLD)}


def _timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds `command` took; a failure stops the benchmark with the command's last output."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} (in {cwd}) exited {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}")
    return time.perf_counter() - started


def kerasweep_row(installer: str, folder: Path, warm: bool, trials: int | None, epochs: int | None) -> dict[str, Any]:
    """Clone, `make install`, `make sweep`, as a new user types them."""
    env = _env(warm)
    clone = folder / f"clone-{installer}"
    cloned = _timed(["git", "clone", "--quiet", str(ROOT), str(clone)], folder, env)
    install = _timed(["make", "--no-print-directory", "install", f"INSTALLER={installer}", f"PYTHON={_python()}"],
                     clone, env)
    sizes = [f"TRIALS={trials}"] if trials else []
    sizes += [f"EPOCHS={epochs}"] if epochs else []
    sweep = _timed(["make", "--no-print-directory", "sweep", f"STORE={clone / 'runs'}", *sizes], clone, env)
    return {"clone_s": cloned, "install_s": install, "sweep_s": sweep, "total_s": cloned + install + sweep}


def peer_row(folder: Path, warm: bool, trials: int | None, epochs: int | None) -> dict[str, Any]:
    """A new venv, `pip install` of the three packages the script imports, the script."""
    env = _env(warm)
    venv = folder / "peer-venv"
    made = _timed([_python(), "-m", "venv", str(venv)], folder, env)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    install = made + _timed([*pip, "-c", str(ROOT / "constraints.txt"), "optuna", "tensorflow", "scikit-learn"],
                            folder, env)
    script = [str(venv / "bin" / "python"), str(ROOT / "benchmarks" / "peer_optuna_script.py"),
              str(trials or 20), str(epochs or 15)]
    sweep = _timed(script, folder, env)
    return {"clone_s": 0.0, "install_s": install, "sweep_s": sweep, "total_s": install + sweep}


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.6 * len(names)))
    left = [0.0] * len(names)
    for part, colour in (("clone_s", "#999999"), ("install_s", "#4c72b0"), ("sweep_s", "#dd8452")):
        widths = [results[n][part] for n in names]
        ax.barh(names, widths, left=left, color=colour, label=part.removesuffix("_s"))
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.axvline(GOAL_S, color="black", linestyle="--", label="goal: 3 minutes")
    ax.set_xlabel("seconds from nothing to the first finished sweep")
    ax.invert_yaxis()
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installers", default=",".join(INSTALLERS), help=f"comma-separated, from {', '.join(INSTALLERS)}")
    parser.add_argument("--no-peer", action="store_true", help="skip the peer's install and script")
    parser.add_argument("--warm", action="store_true", help="keep the installers' caches (default: off, a fresh machine)")
    parser.add_argument("--trials", type=int, help="the sweep's trials (default: the space's 20)")
    parser.add_argument("--epochs", type=int, help="the sweep's epochs (default: the space's 15)")
    parser.add_argument("--store", type=Path, default=Path(os.environ.get("KERASWEEP_STORE", "runs")))
    args = parser.parse_args()
    installers = args.installers.split(",")
    if set(installers) - set(INSTALLERS):
        parser.error(f"--installers: unknown {', '.join(sorted(set(installers) - set(INSTALLERS)))}; "
                     f"expected {', '.join(INSTALLERS)}")
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for installer in installers:
            name = f"kerasweep: git clone + make install ({installer}) + make sweep"
            print(f"running {name} ...", flush=True)
            results[name] = kerasweep_row(installer, Path(tmp), args.warm, args.trials, args.epochs)
        if not args.no_peer:
            print(f"running {PEER} ...", flush=True)
            results[PEER] = peer_row(Path(tmp), args.warm, args.trials, args.epochs)
    sweep = f"{args.trials or 20} trials x {args.epochs or 15} epochs"
    rows = [[name, f"{r['install_s']:.0f}", f"{r['sweep_s']:.0f}", f"{r['total_s']:.0f}",
             "met" if r["total_s"] < GOAL_S else "not met"] for name, r in results.items()]
    print_table(f"Fresh clone to the first finished cnn sweep ({sweep}), caches {'warm' if args.warm else 'off'}, "
                f"{os.cpu_count()} CPUs", ["runner", "install s", "sweep s", "total s", "under 3 min"], rows)
    out = write_results(args.store, "install", {"warm": args.warm, "trials": args.trials, "epochs": args.epochs,
                                                "goal_s": GOAL_S, "results": results})
    png = out.with_suffix(".png")
    plot(results, png)
    print(f"results written to {out} and {png}")


if __name__ == "__main__":
    main()
