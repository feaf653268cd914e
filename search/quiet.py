"""Silence TensorFlow, absl, Optuna, MLflow and Ray unless the user asks for `--verbose`.

Called first thing by the CLI and by every worker process, before TensorFlow is imported: most of
TensorFlow's noise is printed by C++ at import time, so environment variables must already be set.
"""

from __future__ import annotations

import logging
import os
import warnings


def silence(verbose: bool = False) -> None:
    """Keep logs for people: progress and results, not library warnings."""
    if verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("GLOG_minloglevel", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the legacy reporter honours verbose=0
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no CSV/JSON/TBX loggers per trial
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # no "View run" line per trial on a server
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    warnings.filterwarnings("ignore")
    strict_warnings()
    for name in ("tensorflow", "absl", "optuna", "mlflow", "alembic", "sqlalchemy", "ray", "keras_tuner", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # MLflow logs a store's error with its traceback before raising it; kerasweep reports what it raises in
    # one line (a full disk: 40 lines of SQLAlchemy before the one that says what to do)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
    except ImportError:  # pragma: no cover - optuna is a dependency
        pass


STRICT_ENV = "KERASWEEP_STRICT_WARNINGS"  # `make test-strict`: a library's deprecations of kerasweep's calls fail


def strict_warnings() -> None:
    """Under KERASWEEP_STRICT_WARNINGS=1, a Deprecation or Future warning that kerasweep's own code causes
    (the library attributes it to its caller) is an error, so the next major release's breaks show in CI."""
    if os.environ.get(STRICT_ENV) == "1":
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("error", category=category, module=r"kerasweep\.")


def import_keras_quietly() -> None:
    """Import Keras and its backend (TensorFlow unless KERAS_BACKEND names another) with the C++ start-up
    lines (CUDA probing, absl preamble) sent to /dev/null.

    Ctrl-C is held until the import ends: interrupted, TensorFlow's native modules fail to initialise
    ("ImportError: initialization failed") or swallow the interrupt, and the sweep would run on.
    """
    import sys

    from kerasweep.search.interrupts import deferred_interrupts
    from kerasweep.trainers.backend import prepare_environment, wanted

    prepare_environment()  # --verbose too: the backend then loads later, with its logs
    if ("tensorflow" if wanted() == "tensorflow" else "keras") in sys.modules or \
            os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with deferred_interrupts():
            if wanted() == "tensorflow":
                import tensorflow  # noqa: F401
            import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)
    if "absl.logging" in sys.modules:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
