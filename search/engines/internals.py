"""Every reach into a library's private API, in one file: where a public route exists kerasweep takes it
(Optuna's `study.tell(..., skip_if_finished=True)` and storage heartbeats, MLflow's client for a new
schema); what is left here has none. Each entry names why it is needed and the version it was checked on,
and none fails silently: a reach that no longer works says once what kerasweep does instead.

| reach                                         | why                                                        | checked on |
|-----------------------------------------------|------------------------------------------------------------|------------|
| `Study._get_trials` (a sampler's view)        | warm-start evidence: samplers read prior trials through it | Optuna 5.0 |
| `ray._private.ray_constants.ENABLE_RAY_CLUSTER` | a local Ray that listens on 127.0.0.1 only               | Ray 2.60   |
| `ray.init(_node_ip_address=...)`              | the same promise: the node's own address is loopback       | Ray 2.60   |
| `Tuner._local_tuner._run_config.callbacks`    | a restored Tuner's progress line (restore takes no callbacks) | Ray 2.60 |
| `Oracle._random_values` (overridden)          | warm start, enqueue and defaults first on every KerasTuner oracle, Hyperband's brackets included (`populate_space` would bypass them) | KerasTuner 1.4.8 |
| `keras_tuner.src.config.DEBUG`                | failed trials' tracebacks off the progress line            | KerasTuner 1.4.8 |

`tests/test_engine_contract.py` runs under `make test-strict` with kerasweep's own Deprecation and Future
warnings as errors, so a library release that moves one of these shows here first.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator
from typing import Any

LOOPBACK = "127.0.0.1"
log = logging.getLogger("kerasweep")


@functools.cache
def _say_once(message: str) -> None:
    log.warning("kerasweep: %s", message)


# --- Optuna -------------------------------------------------------------------------------------------
class StudyWithEvidence:
    """The study as a sampler sees it: its trials with the prior ones first (samplers read trials through
    the private `_get_trials`); everything else is the study's own, so storage writes go to the real trials."""

    def __init__(self, study: Any, prior: list[Any]) -> None:
        self._study, self._prior = study, prior

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list[Any]:
        prior = [t for t in self._prior if states is None or t.state in states]
        own = getattr(self._study, "_get_trials", None)
        if own is None:  # renamed: the public route, without the cache
            _say_once("optuna.Study._get_trials is gone: samplers read trials without Optuna's cache")
            return prior + self._study.get_trials(deepcopy=deepcopy, states=states)
        return prior + own(deepcopy=deepcopy, states=states, use_cache=use_cache)

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[Any]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[Any]:
        return self.get_trials()


# --- Ray ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def ray_loopback_only() -> Iterator[dict[str, Any]]:
    """Start a local Ray whose every server (GCS, raylet, workers, agents) listens on 127.0.0.1 only;
    yields the extra `ray.init` options that go with it.

    Ray swaps a node address of 127.0.0.1 for the machine's own address, and then its gRPC servers
    listen on every interface, unless Ray believes no cluster can be formed: the switch it keeps for
    macOS and Windows. The switch is read by this process (the module constant) and by every process
    Ray starts (the environment, which they inherit at start). Without the switch the promise cannot be
    kept, so this refuses rather than listening on every interface.
    """
    from ray._private import ray_constants

    name = getattr(ray_constants, "ENABLE_RAY_CLUSTERS_ENV_VAR", None)
    if name is None or not hasattr(ray_constants, "ENABLE_RAY_CLUSTER"):
        raise RuntimeError("this Ray version has no ENABLE_RAY_CLUSTER switch, so a local Ray cannot be kept on "
                           "127.0.0.1; start a Ray cluster yourself and pass --address (checked on Ray 2.60)")
    previous_env, previous_constant = os.environ.get(name), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[name] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield {"_node_ip_address": LOOPBACK}
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = previous_constant
        if previous_env is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous_env


def reattach_callback(tuner: Any, callback: Any) -> None:
    """A restored Tuner unpickles its callbacks without their progress hook; give it the live one."""
    run_config = getattr(getattr(tuner, "_local_tuner", None), "_run_config", None)
    if run_config is None:
        _say_once("Ray's restored Tuner keeps its run config elsewhere now: a resumed Ray sweep shows no progress "
                  "line (its trials are still logged to MLflow)")
        return
    run_config.callbacks = [c for c in (run_config.callbacks or []) if type(c).__name__ != type(callback).__name__]
    run_config.callbacks.append(callback)


# --- KerasTuner ---------------------------------------------------------------------------------------
def defaults_first(oracle_class: type) -> type:
    """The oracle, except that a new search's first configs are `first_points` (--warm-start, --enqueue,
    then the space's declared defaults), in order; names a point leaves out take their defaults."""
    if not hasattr(oracle_class, "_random_values"):
        _say_once(f"KerasTuner's {oracle_class.__name__} has no _random_values: --warm-start, --enqueue and the "
                  "defaults-first trial are not applied on the keras_tuner engine")
        return oracle_class

    class DefaultsFirst(oracle_class):  # type: ignore[misc, valid-type]
        first_points: tuple[dict[str, Any], ...] = ()

        def _random_values(self) -> dict[str, Any] | None:
            given = len(self.trials)
            if given >= len(self.first_points):
                return super()._random_values()
            import keras_tuner as kt

            point, hps = self.first_points[given], kt.HyperParameters()
            for hp in self.hyperparameters.space:
                hps.merge([hp])
                if hps.is_active(hp):
                    hps.values[hp.name] = point.get(hp.name, hp.default)
            return hps.values

    DefaultsFirst.__name__ = f"DefaultsFirst{oracle_class.__name__}"
    return DefaultsFirst


def keras_tuner_tracebacks(shown: bool) -> None:
    """KerasTuner prints every failed trial's traceback by default; kerasweep logs it to MLflow instead."""
    try:
        from keras_tuner.src import config
    except ImportError:
        _say_once("keras_tuner.src.config is gone: KerasTuner may print failed trials' tracebacks")
        return
    config.DEBUG = shown
