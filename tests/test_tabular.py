"""Tabular data as users have it (issue 27): column roles, missing values and categories encoded the same way
in the trial and the served model, baselines beside every result, leak and rare-class warnings, regression
losses, and the UI column that ranks the winner first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import QUIET_ENV, ROOT, invoke_cli, mlflow_client, sweep_runs, write_space
from tests.messy_table import messy_frame, write_messy_csv
from kerasweep.trainers.data import DataError, load_arrays
from kerasweep.trainers.raw_columns import ColumnError, ColumnPlan, fit_plan, infer_roles


def test_column_roles_are_inferred_with_reasons_and_overridable() -> None:
    frame = messy_frame().drop(columns=["label"])
    frame.insert(0, "Unnamed: 0", range(len(frame)))
    frame["when"] = pd.date_range("2020-01-01", periods=len(frame)).strftime("%Y-%m-%d")
    roles = {name: role for name, (role, _) in infer_roles(frame).items()}
    # Rule: pandas' index column is an identifier, text and true/false are categories, yyyymmdd and ISO text
    # are dates, few distinct whole numbers a category, other numbers numeric
    assert roles == {"Unnamed: 0": "identifier", "island": "categorical", "flipper": "numeric",
                     "member": "categorical", "visits": "numeric", "joined": "date", "when": "date"}
    frame["grade"] = np.arange(len(frame)) % 4
    assert infer_roles(frame)["grade"][0] == "categorical"
    overridden = infer_roles(frame, {"grade": "numeric", "visits": "ignore"})
    # Rule: the space file's columns: wins, and says so
    assert overridden["grade"] == ("numeric", "set in the space file") and overridden["visits"][0] == "ignore"
    with pytest.raises(ColumnError, match=r"columns: 'grad' not in the data; its columns are Unnamed: 0, island"):
        infer_roles(frame, {"grad": "numeric"})


def test_the_plan_encodes_missing_unseen_and_retyped_values_as_training_taught_it() -> None:
    train = pd.DataFrame({"island": ["a", "b", "a", None], "size": [1.5, np.nan, 3.25, 5.0], "n": [1, 2, 3, 4]})
    plan = fit_plan(train, infer_roles(train, {"n": "numeric"}))
    # Rule: a missing number is the training median with a missing flag; a missing category its own slot
    assert plan.feature_names == ["island=a", "island=b", "island=<missing>", "island=<other>", "size", "size_missing",
                                  "n"]
    rows = pd.DataFrame({"island": ["zz", np.nan], "size": [None, 2.0], "n": [2.0, 3]})  # floats where ints were
    encoded = plan.encode(rows)
    assert encoded.tolist() == [[0, 0, 0, 1, 3.25, 1, 2], [0, 0, 1, 0, 2.0, 0, 3]]
    # Rule: the plan travels as JSON and encodes the same afterwards
    assert np.array_equal(ColumnPlan.from_json(plan.to_json()).encode(rows), encoded)
    with pytest.raises(ColumnError, match="rows lack column.s. size"):
        plan.encode(rows.drop(columns=["size"]))
    with pytest.raises(ColumnError, match="column size: 1 value.s. are not numbers .such as 'big'"):
        plan.encode(rows.assign(size=["big", 1.0]))


def test_a_messy_csv_loads_with_its_index_left_out_and_medians_from_training_rows(tmp_path: Path) -> None:
    path = write_messy_csv(tmp_path / "messy.csv")
    data = load_arrays(str(path))
    # Rule: the index column is left out with a notice naming it; nothing is NaN after encoding
    assert "Unnamed: 0" not in data.plan.used and any("column Unnamed: 0 is left out" in n for n in data.notices)
    assert np.isfinite(data.x_train).all() and np.isfinite(data.x_val).all()
    flipper = next(c for c in data.plan.columns if c.name == "flipper")
    training_rows = pd.read_csv(path).drop(data.raw_val["Unnamed: 0"])
    # Rule: the imputed value is learnt from the training split only
    assert flipper.fill[0] == pytest.approx(training_rows["flipper"].median())


def test_rows_without_a_target_are_left_out_and_counted(tmp_path: Path) -> None:
    frame = messy_frame(rows=200)
    frame.loc[[3, 50, 120], "label"] = np.nan  # a text target with NA cells
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    data = load_arrays(str(tmp_path / "gaps.csv"))
    # Rule: no traceback: the rows are dropped and counted
    assert data.dropped_rows == 3 and len(data.x_train) + len(data.x_val) == 197
    np.savez(tmp_path / "nan.npz", x=np.where(np.eye(10, 3) > 0, np.nan, 1.0), y=np.arange(10) % 2)
    # Rule: arrays with NaN are refused naming the columns and how many rows
    with pytest.raises(DataError, match=r"NaN or infinite values in column\(s\) x0, x1, x2, 3 of 10 rows"):
        load_arrays(str(tmp_path / "nan.npz"))


def test_baselines_are_the_trivial_predictors_scores() -> None:
    from types import SimpleNamespace

    from kerasweep.trainers.baselines import baseline

    classes = SimpleNamespace(streams=None, task="binary", classes=("no", "yes"), y_train=np.array([0, 0, 0, 1]),
                              y_val=np.array([0, 0, 1, 1]), class_counts=lambda: (3, 1))
    # Rule: accuracy's baseline is the training majority scored on the validation rows; AUC's is 0.5
    assert baseline(classes, "val_accuracy").value == 0.5 and "always 'no'" in baseline(classes, "val_accuracy").predictor
    assert baseline(classes, "val_auc").value == 0.5
    numbers = SimpleNamespace(streams=None, task="regression", y_train=np.array([0.0, 0, 0, 10]),
                              y_val=np.array([0.0, 0, 1, 0]))
    found = baseline(numbers, "val_mae")
    # Rule: regression's baseline is the better of the training mean and median (here the median, 0)
    assert found.value == pytest.approx(0.25) and "median" in found.predictor
    assert not found.beaten_by(0.25 + 1e-9, "minimize") and found.beaten_by(0.2, "minimize")


def test_a_planted_leak_and_a_rare_class_are_warned_before_training(tmp_path: Path) -> None:
    from kerasweep.search.data_report import data_report
    from kerasweep.search.space import load_space

    frame = messy_frame(rows=800, rare=0.05)
    frame["copy"] = (frame["label"] == "yes").astype(float) * 3.5 + 1.0  # the label again, as a number
    frame.to_csv(tmp_path / "leak.csv", index=False)
    space = load_space(write_space(tmp_path, """
        name: leak
        model: mlp
        data: leak.csv
        task: binary
        params: {units: {type: int, low: 8, high: 16}}
        """))
    report = data_report(space)
    # Rule: the copied label is named as a leak; the 5 % class is named with the fix; the baseline is the majority
    assert any(w.startswith("column copy alone predicts the validation labels") for w in report.warnings)
    assert any("class 'yes' is 5.0% of the training rows" in w and "class_weight: balanced" in w
               for w in report.warnings)
    assert report.baseline.metric == "val_accuracy" and report.baseline.value == pytest.approx(0.95, abs=0.01)
    assert not any(w.startswith("column island") for w in report.warnings)


def test_a_regression_loss_is_the_one_compiled() -> None:
    from kerasweep.trainers.fit import TrainSpec, train

    result = train(TrainSpec(model="mlp", data="diabetes", task="regression", monitor="val_mae", direction="minimize",
                             params={"loss": "mae", "units": 8, "layers": 1}, epochs=1))
    # Rule: loss: mae trains with the mean absolute error (checked on the compiled model)
    assert result.model.loss == "mean_absolute_error"
    with pytest.raises(ValueError, match="loss: 'mae' applies to regression"):
        train(TrainSpec(model="mlp", data="iris", params={"loss": "mae"}, epochs=1))


def test_a_messy_csv_sweeps_and_the_registered_model_answers_raw_rows_as_the_trial(tmp_path: Path) -> None:
    from kerasweep.search.production import train_config
    from kerasweep.search.tracking import RANKED_METRIC

    write_messy_csv(tmp_path / "messy.csv", rows=500)
    write_space(tmp_path, """
        name: penguins
        model: mlp
        data: messy.csv
        budget: {trials: 3, epochs: 12}
        search: {pruner: none}
        params:
          learning_rate: {type: float, low: 3.0e-3, high: 3.0e-2, log: true}
          units: {type: categorical, choices: [16, 32]}
        fixed: {layers: 1}
        """)
    store = tmp_path / "store"
    swept = invoke_cli("sweep", str(tmp_path / "space.yaml"), "--store", str(store))
    assert swept.returncode == 0, swept.stderr + swept.stdout
    # Rule: the roles and the baseline are printed before the trials, the index column's notice too
    said = " ".join((swept.stdout + swept.stderr).split())  # the console wraps long lines
    assert "columns identifier: Unnamed: 0" in said and "baseline val_accuracy" in said
    assert "column Unnamed: 0 is left out" in said
    client = mlflow_client(store)
    (parent,), trials = sweep_runs(client, "penguins", "penguins")
    assert "baseline_val_accuracy" in parent.data.metrics
    export = store / "exports" / "penguins.yaml"
    import yaml

    exported = yaml.safe_load(export.read_text())
    ranked = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
                                order_by=[f"metrics.{RANKED_METRIC} DESC"])
    # Rule: sorting the trials by the `objective` column puts the exported winner first
    assert ranked[0].info.run_id == exported["provenance"]["mlflow_run_id"]
    assert exported["provenance"]["baseline"]["beaten"] is True

    result = train_config(export, store)
    # a fresh process, as production loads it: raw held-back rows, missing cells and an unseen category included
    probe = f"""
import json, sys, mlflow, pandas as pd
mlflow.set_tracking_uri({client.tracking_uri!r})
model = mlflow.pyfunc.load_model("models:/penguins/{result.version}")
rows = pd.read_json(sys.stdin, orient="split")
print(json.dumps([str(p) for p in model.predict(rows)]))
"""
    data = load_arrays(str(tmp_path / "messy.csv"))
    rows = data.raw_val.copy()
    rows.loc[rows.index[:5], "island"] = "Atlantis"
    answered = subprocess.run([sys.executable, "-c", probe], input=rows.to_json(orient="split"), capture_output=True,
                              text=True, env={**__import__("os").environ, **QUIET_ENV}, cwd=ROOT, timeout=300)
    assert answered.returncode == 0, answered.stderr
    predicted = np.array(json.loads(answered.stdout.strip().splitlines()[-1]))
    import keras

    saved = keras.models.load_model(result.model_path)
    expected = np.asarray(data.classes)[saved.predict(data.plan.encode(rows), verbose=0).argmax(axis=1)]
    # Rule: the registered model answers every raw row exactly as the saved Keras model does on its encoding
    assert predicted.tolist() == expected.tolist()
    truth = np.asarray(data.classes)[data.y_val]
    clean = ~rows.index.isin(rows.index[:5])
    assert np.mean(predicted[clean] == truth[clean]) == pytest.approx(
        np.mean(expected[clean] == truth[clean]))
    gaps = rows.isna().any(axis=1).to_numpy()
    # Rule: rows with a missing cell get real answers, not one constant
    assert gaps.sum() >= 5 and len(set(predicted[gaps])) > 1
    assert np.mean(predicted == truth) > 0.6  # chance is 1/3


def test_a_sweep_that_cannot_beat_the_trivial_predictor_says_so(tmp_path: Path) -> None:
    messy_frame(rows=600, rare=0.03).to_csv(tmp_path / "rare.csv", index=False)
    write_space(tmp_path, """
        name: rare
        model: mlp
        data: rare.csv
        task: binary
        budget: {trials: 1, epochs: 1}
        params: {units: {type: categorical, choices: [4]}}
        fixed: {learning_rate: 1.0e-4}
        """)
    store = tmp_path / "store"
    swept = invoke_cli("sweep", str(tmp_path / "space.yaml"), "--store", str(store))
    assert swept.returncode == 0, swept.stderr + swept.stdout
    # Rule: a best value no better than always answering the majority is said loudly, and in the export
    said = " ".join(swept.stderr.split())  # the console wraps long lines
    assert "No trial beats the trivial predictor" in said and "class 'yes' is 2.9% of the training rows" in said
    import yaml

    exported = yaml.safe_load((store / "exports" / "rare.yaml").read_text())["provenance"]["baseline"]
    assert exported["beaten"] is False and exported["metric"] == "val_accuracy"


def test_a_data_function_returning_a_dataframe_is_a_table() -> None:
    data = load_arrays("tests.user_data:messy_table")
    # Rule: a DataFrame from a data function gets column roles as a CSV does
    assert data.plan is not None and "island" in data.plan.used and np.isfinite(data.x_train).all()
    with pytest.raises(DataError, match="columns: only a table"):
        load_arrays("iris", columns=(("petal", "numeric"),))


def test_a_fifo_as_data_is_refused_at_once(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "pipe.csv")
    # Rule: anything that is not a regular file or folder is refused before a read could hang (issue 32, item 8)
    with pytest.raises(DataError, match="pipe.csv: not a regular file or folder"):
        load_arrays(str(tmp_path / "pipe.csv"))
    (tmp_path / "images" / "cat").mkdir(parents=True)
    os.mkfifo(tmp_path / "images" / "cat" / "pipe.png")
    with pytest.raises(DataError, match="no images found"):
        load_arrays(str(tmp_path / "images"))


def test_balanced_accuracy_is_the_mean_recall_per_class_and_an_objective(tmp_path: Path) -> None:
    from sklearn.metrics import balanced_accuracy_score

    from kerasweep.trainers.fit import TrainSpec, train
    from kerasweep.trainers.metrics import BalancedAccuracy

    y, p = np.array([0, 0, 0, 1, 2, 2]), np.eye(3)[[0, 0, 1, 1, 2, 0]]
    metric = BalancedAccuracy(3)
    metric.update_state(y, p)
    # Rule: balanced accuracy is scikit-learn's, and a run can rank by it
    assert float(metric.result()) == pytest.approx(balanced_accuracy_score(y, p.argmax(axis=1)), abs=1e-6)
    result = train(TrainSpec(model="mlp", data="wine", monitor="val_balanced_accuracy", params={"units": 8}, epochs=2))
    assert len(result.history["val_balanced_accuracy"]) == 2
    # Rule: a classification logs its one-vs-rest AUC too (an objective for rare classes), scikit-learn's
    from sklearn.metrics import roc_auc_score

    from kerasweep.trainers.metrics import ClassesAUC

    auc = ClassesAUC(3)
    scores = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.4, 0.4, 0.2], [0.3, 0.3, 0.4]])
    auc.update_state(np.array([0, 1, 2, 1, 0]), scores)
    expected = roc_auc_score(np.array([0, 1, 2, 1, 0]), scores, multi_class="ovr", average="macro")
    assert float(auc.result()) == pytest.approx(expected, abs=0.02)
    # Rule: kerasweep's own metrics are compiled only when the objective names them, so a default sweep's
    # checkpoint loads with plain Keras in a fresh process
    assert "val_auc" not in result.history
    ranked_by_auc = train(TrainSpec(model="mlp", data="wine", monitor="val_auc", params={"units": 8}, epochs=1))
    assert "val_auc" in ranked_by_auc.history and "val_balanced_accuracy" not in ranked_by_auc.history
    plain = tmp_path / "plain.keras"
    train(TrainSpec(model="mlp", data="wine", params={"units": 8}, epochs=1), checkpoint_path=plain)
    loaded = subprocess.run([sys.executable, "-c", f"import keras; keras.models.load_model({str(plain)!r})"],
                            capture_output=True, text=True, env={**__import__("os").environ, **QUIET_ENV}, timeout=120)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
