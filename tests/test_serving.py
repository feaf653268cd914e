"""`mlflow models serve` on a model `kerasweep train` registered answers raw rows with the class names, as
`mlflow.pyfunc.load_model` does (issue 12). Slow: it starts a real scoring server."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import free_port, mlflow_client, serving

pytestmark = pytest.mark.slow


def test_mlflow_models_serve_answers_raw_rows_with_class_names(tmp_path: Path, monkeypatch) -> None:
    import mlflow
    from sklearn.datasets import load_wine

    from kerasweep.search.production import train_config

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    bunch = load_wine(as_frame=True)
    names = np.array(["barolo", "grignolino", "barbera"])
    frame = bunch.frame.assign(cultivar=names[bunch.target]).drop(columns=["target"])
    held = frame.sample(n=12, random_state=2)
    frame.drop(held.index).to_csv(tmp_path / "wine.csv", index=False)
    export = tmp_path / "cultivars.yaml"
    export.write_text(f"model: mlp\ndata: {tmp_path / 'wine.csv'}\ntarget: cultivar\nepochs: 30\n"
                      "params: {units: 32, layers: 1, learning_rate: 0.01}\nprovenance: {space: cultivars}\n")
    store = tmp_path / "store"
    result = train_config(export, store)
    uri = mlflow_client(store).tracking_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    rows = held.drop(columns=["cultivar"])
    expected = list(mlflow.pyfunc.load_model(f"models:/cultivars/{result.version}").predict(rows))

    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/cultivars/{result.version}",
               "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    env = {"MLFLOW_TRACKING_URI": uri, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with serving(command, port, env=env, health="/ping") as url:
        body = json.dumps({"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}})
        request = urllib.request.Request(f"{url}/invocations", data=body.encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            predictions = json.loads(answer.read())["predictions"]
    # Rule: the served model answers a real request on 127.0.0.1 with class names, as the pyfunc does
    assert predictions == expected
    assert set(predictions) <= set(names.tolist())
    assert np.mean(np.asarray(predictions) == held["cultivar"].to_numpy()) >= 0.9
