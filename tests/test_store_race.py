"""Two commands starting at once on a new store (issue 32 item 9): the Optuna file's schema is created by one
of them while the others wait, so none fails with "cannot open"."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

SPACE = {"name": "race", "model": "mlp", "data": "iris", "params": {"units": {"type": "int", "low": 4, "high": 8}}}


def _open(store: str, start: object, results: object) -> None:
    import optuna

    from kerasweep.search.engines.optuna import make_storage
    from kerasweep.search.errors import UserInputError
    from kerasweep.search.space import Space
    from kerasweep.search.sweep import make_config

    config = make_config(Space.model_validate(SPACE), store=Path(store), check_data_files=False)
    start.wait()  # every process opens the new file at the same moment
    try:
        optuna.create_study(study_name="race", storage=make_storage(config), load_if_exists=True)
        results.put("ok")
    except UserInputError as exc:
        results.put(str(exc))


def test_commands_starting_together_on_a_new_store_all_open_it(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    for attempt in range(3):  # the race needed a few tries to show without the lock
        store = tmp_path / f"store{attempt}"
        store.mkdir()  # as run_sweep has made it by then
        start, results = context.Barrier(6), context.Queue()
        processes = [context.Process(target=_open, args=(str(store), start, results)) for _ in range(6)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(120)
        outcomes = [results.get(timeout=10) for _ in processes]
        # Rule: every command opens the store's Optuna file; none sees a half-made schema
        assert outcomes == ["ok"] * 6, outcomes
