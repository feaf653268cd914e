"""What a dead process left behind in an Optuna study, and how it is cleaned up in both stores.

A trial whose process died ends FAILED in Optuna and in MLflow and, when it saved a backup, gets a
retry that continues from it. Death is decided by the owner's pid only where that pid can be read
(`owners.known_dead`) and by Optuna's heartbeat everywhere else. A config that killed its process
`MAX_CRASHES` times is not retried again: with one worker it would otherwise come back on every
resume and stop the sweep each time.
"""

from __future__ import annotations

import datetime
import functools
import os
import shutil
import time
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState as OptunaState

from kerasweep.search.engines._optuna_space import chosen_features
from kerasweep.search.engines.owners import OWNER_ATTR, has_owner, known_dead, owner_name
from kerasweep.search.interrupts import deferred_interrupts
from kerasweep.search.lifecycle import ORPHAN_REASON, TrialLife, remove_if_empty
from kerasweep.search.results import TrialState
from kerasweep.search.tracking import TRIAL_TAG
from kerasweep.trainers.fit import ResumePoint, latest_backup

if TYPE_CHECKING:
    from kerasweep.search.config import SweepConfig

STATES = {
    OptunaState.COMPLETE: TrialState.COMPLETE,
    OptunaState.PRUNED: TrialState.PRUNED,
    OptunaState.FAIL: TrialState.FAILED,
    OptunaState.RUNNING: TrialState.RUNNING,
}
RUN_ATTR, DISCARDED_ATTR = "kerasweep.mlflow_run_id", "kerasweep.discarded"
RETRIES_ATTR, RETRY_OF_ATTR, CRASHES_ATTR = "kerasweep.retries", "kerasweep.retry_of", "kerasweep.crashes"
HEARTBEAT_S, GRACE_S = 10, 60  # a trial whose worker stopped beating for a minute is stale
OWNERLESS_GRACE_S = 3.0  # a live worker names itself owner milliseconds after asking
MAX_CRASHES = 3  # a config whose process died this many times is not retried again
STALE_REASON = f"worker stopped sending heartbeats for {GRACE_S} s (its process or machine died)"


def gave_up_reason(reason: str, crashes: int) -> str:
    return (f"{reason}; this config's process died {crashes} times (out of memory? see `dmesg`), so it is not "
            "retried again")


def stale_trial_failed(sweep: SweepConfig, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Optuna's heartbeat check failed a trial whose worker stopped beating (a dead process, a lost
    machine): close its MLflow run too, and let it continue from its backup when one is reachable."""
    fail_and_continue(sweep, study, trial, STALE_REASON)


def recover_dead_worker(sweep: SweepConfig, study: optuna.Study, pid: int) -> None:
    """The running trial of a worker that died ends failed in Optuna and MLflow, and gets a retry that
    continues from its backup when it saved one."""
    owner = owner_name(pid)
    for t in study.get_trials(deepcopy=False, states=(OptunaState.RUNNING,)):
        if t.user_attrs.get(OWNER_ATTR) == owner:
            fail_and_continue(sweep, study, t, ORPHAN_REASON)


def fail_dead_owners(sweep: SweepConfig, study: optuna.Study) -> int:
    """Fail (and retry from a backup) the running trials whose owner is known dead here; returns how many.
    Those of other machines or namespaces are left to the heartbeat."""
    dead = [t for t in study.get_trials(deepcopy=False, states=(OptunaState.RUNNING,)) if known_dead(t.user_attrs)]
    for t in dead:
        fail_and_continue(sweep, study, t, ORPHAN_REASON)
    return len(dead)


def fail_and_continue(sweep: SweepConfig, study: optuna.Study, trial: optuna.trial.FrozenTrial, reason: str) -> None:
    """A trial whose worker died: failed in both stores, and retried from its backup when it saved one
    (unless its config killed its process `MAX_CRASHES` times)."""
    backup = latest_backup(sweep.store.backups(sweep.name, trial.number))
    if backup and crashes_of(trial) + 1 >= MAX_CRASHES:
        reason = gave_up_reason(reason, crashes_of(trial) + 1)
    abandon(sweep, study, trial, TrialLife(sweep), reason)
    if backup:
        continue_later(study, trial, crashed=True)


def crashes_of(trial: optuna.trial.FrozenTrial) -> int:
    return int(trial.user_attrs.get(CRASHES_ATTR, 0))


def continue_later(study: optuna.Study, trial: optuna.trial.FrozenTrial, crashed: bool) -> bool:
    """Enqueue a retry of a trial cut short (a crash, Ctrl-C) that continues from its backup; False when
    it is not retried: one exists already, or its process died `MAX_CRASHES` times with this config."""
    crashes = crashes_of(trial) + crashed
    if crashes >= MAX_CRASHES:
        return False
    if any(t.user_attrs.get(RETRY_OF_ATTR) == trial.number for t in study.get_trials(deepcopy=False)):
        return True  # another command (or this one's other path) retried it already
    retries = int(trial.user_attrs.get(RETRIES_ATTR, 0))  # a crash is not the trial's failure: no retry used up
    study.enqueue_trial(trial.params, user_attrs={RETRIES_ATTR: retries, RETRY_OF_ATTR: trial.number,
                                                  CRASHES_ATTR: crashes})
    return True


def resume_unfinished(sweep: SweepConfig, study: optuna.Study) -> None:
    """Trials that a crash or Ctrl-C cut short and that left a backup continue on this run, as Ray Tune's
    restore resumes errored trials: each gets a retry that starts from its last saved epoch."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get(RETRY_OF_ATTR) for t in trials}
    for t in trials:
        if t.state is OptunaState.FAIL and t.number not in retried and latest_backup(
                sweep.store.backups(sweep.name, t.number)):
            continue_later(study, t, crashed=False)


@deferred_interrupts()
def abandon(sweep: SweepConfig, study: optuna.Study, trial: optuna.Trial | optuna.trial.FrozenTrial, life: TrialLife,
            reason: str) -> None:
    """End a trial that will not finish as failed in Optuna and MLflow, whichever it is still open in."""
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
    if frozen.state is OptunaState.RUNNING:  # finished meanwhile by another process: it stays as told
        study.tell(trial.number, state=OptunaState.FAIL, skip_if_finished=True)
    run_id = frozen.user_attrs.get(RUN_ATTR)
    if run_id:
        life.abandon(run_id, reason)
    elif sweep.parent_run_id:
        log_lost_trials(life, [frozen], reason)


def log_lost_trials(life: TrialLife, trials: list[optuna.trial.FrozenTrial], reason: str) -> None:
    """Trials that ended before their MLflow run was opened get a failed run, so both stores list them;
    a run opened but not yet recorded in Optuna is failed too."""
    logged = {r.data.tags.get(TRIAL_TAG): r for r in life.tracker.trial_runs(life.sweep.parent_run_id)}
    for t in trials:
        run = logged.get(str(t.number))
        if run is None:
            life.log_lost(t.number, t.params, reason)
        else:
            life.abandon(run.info.run_id, reason)


def fail_orphans(sweep: SweepConfig, study: optuna.Study) -> None:
    """Trials left RUNNING by a process that no longer exists end as failed, everywhere.

    Dead means: stale by Optuna's heartbeat (any machine), or owned by a pid of this machine and PID
    namespace that is gone. A process killed between `ask` and naming itself owner leaves an ownerless
    trial; one still ownerless after a short grace is an orphan too. An orphan that never got its MLflow
    run gets one (failed), so both stores always hold the same trials.
    """
    with chosen_features():  # the heartbeat's verdict, with `stale_trial_failed` closing the MLflow run
        optuna.storages.fail_stale_trials(study)
    running = study.get_trials(deepcopy=False, states=(OptunaState.RUNNING,))
    if not all(has_owner(t.user_attrs) for t in running):
        time.sleep(OWNERLESS_GRACE_S)
        running = study.get_trials(deepcopy=False, states=(OptunaState.RUNNING,))
    orphans = []
    for t in running:
        if _gone(t):
            try:
                study.tell(t.number, state=OptunaState.FAIL)
            except (ValueError, RuntimeError):  # finished by someone else meanwhile: it stays as they told it
                continue
            orphans.append(t)
    given_up = {t.number for t in orphans if latest_backup(sweep.store.backups(sweep.name, t.number))
                and not continue_later(study, t, crashed=True)}
    if not sweep.parent_run_id:
        return
    life = TrialLife(sweep)
    for t in orphans:
        if t.number in given_up:
            log_lost_trials(life, [t], gave_up_reason(ORPHAN_REASON, crashes_of(t) + 1))
    close_runs_of_finished_trials(sweep, study, life.tracker)

    @functools.cache
    def trials() -> dict[int, optuna.trial.FrozenTrial]:
        return {t.number: t for t in study.get_trials(deepcopy=False)}

    # a run is kept while its trial's process may live. The trials are read after MLflow's search (the first
    # `keep` call), so every run found belongs to a trial read: a run another command opened a moment before
    # the search is kept (read before it, that trial was unknown here and its live run was failed)
    life.fail_orphans(keep=lambda number: number in trials() and not _gone(trials()[number]))
    if orphans:
        log_lost_trials(life, [t for t in orphans if t.number not in given_up], ORPHAN_REASON)


def _gone(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether the trial's process is known to be gone: no owner named, or an owner dead here."""
    return not has_owner(trial.user_attrs) or known_dead(trial.user_attrs)


def close_runs_of_finished_trials(sweep: SweepConfig, study: optuna.Study, tracker: Any) -> None:
    """A process killed while logging (after telling Optuna, before closing the MLflow run) left a
    RUNNING run for a finished trial: close it as Optuna recorded the trial, checkpoint included.

    Not one a live command is closing at this moment (it logs the checkpoint this would remove): only
    runs whose owner is gone, or that stayed open a heartbeat grace after their trial finished."""
    finished = {t.user_attrs[RUN_ATTR]: t for t in study.get_trials(deepcopy=False) if RUN_ATTR in t.user_attrs
                and t.state in (OptunaState.COMPLETE, OptunaState.PRUNED, OptunaState.FAIL)
                and (_gone(t) or _finished_before(t, GRACE_S))}
    for run in tracker.trial_runs(sweep.parent_run_id):
        t = finished.get(run.info.run_id)
        if t is None or run.info.status != "RUNNING":
            continue
        state = STATES[t.state]
        checkpoint = sweep.store.checkpoint(sweep.name, t.number)
        tracker.finish_trial(run.info.run_id, state, t.values[0] if t.values else last_value(t),
                             checkpoint if state is TrialState.COMPLETE else None,
                             t.user_attrs.get("kerasweep.error") or (ORPHAN_REASON if state is TrialState.FAILED else None))
        checkpoint.unlink(missing_ok=True)


def _finished_before(trial: optuna.trial.FrozenTrial, seconds: float) -> bool:
    """Whether the trial finished more than `seconds` ago (Optuna records local time)."""
    done = trial.datetime_complete
    return done is not None and (datetime.datetime.now() - done).total_seconds() > seconds


def last_value(trial: optuna.trial.FrozenTrial) -> float | None:
    steps = trial.intermediate_values
    return steps[max(steps)] if steps else None


def resume_point(sweep: SweepConfig, source: int, number: int) -> ResumePoint | None:
    """Where a retry of trial `source` continues: that trial's backup, moved to trial `number`."""
    backups = sweep.store.backups(sweep.name, source)
    found = latest_backup(backups)
    if found is not None and found.epoch >= sweep.space.budget.epochs:  # re-run with fewer --epochs: afresh
        shutil.rmtree(backups, ignore_errors=True)
        return None
    # the copy moves to the trial that continues it: killed too, that one resumes from it
    return take_over_backup(sweep, source, number) if found is not None else None


def take_over_backup(sweep: SweepConfig, source: int, number: int) -> ResumePoint | None:
    """Move trial `source`'s resumable copy to trial `number`, which continues it; returns it there."""
    target = sweep.store.backups(sweep.name, number)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    try:
        os.replace(sweep.store.backups(sweep.name, source), target)
    except OSError:  # another worker took it first, or it was removed: start afresh
        return None
    remove_if_empty(sweep.store.trial_folder(sweep.name, source))
    return latest_backup(target)
