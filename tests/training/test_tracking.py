"""What a training run records in MLflow (trials as child runs, the study, datasets, the commit,
prose descriptions, the headline metric) and how the Optuna study behaves when resumed and when
two jobs share it."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path

import optuna
import pytest

import mlflow
from features.store import Store
from mlflow import MlflowClient
from tests.conftest import CHURN_AS_OF
from training import registry, tracking
from training.churn import ChurnTrainConfig, suggest, tune

REPO = Path(__file__).resolve().parents[2]


def test_the_churn_run_holds_its_trials_study_datasets_and_commit(churn_run, store):
    registry.configure_tracking(store)
    client = MlflowClient()
    run = client.get_run(churn_run.run_id)
    tags, metrics = run.data.tags, run.data.metrics
    assert tags["optuna_study"] == churn_run.study
    assert tags["optuna_storage"] == store.optuna
    before, after = int(tags["optuna_trials_before"]), int(tags["optuna_trials_after"])
    assert after == before + 2  # the fixture asks for two trials, on top of any stored
    trials = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert len(trials) == 2
    assert all({"learning_rate", "num_leaves"} <= set(t.data.params) for t in trials)
    contexts = {
        d.dataset.name: {t.key: t.value for t in d.tags}["mlflow.data.context"]
        for d in run.inputs.dataset_inputs
    }
    assert sorted(contexts.values()) == ["evaluation", "training", "validation"]
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert tags[tracking.GIT_COMMIT_TAG] == head.stdout.strip()
    # validation AUC is the tuning objective, logged under its own name
    assert "validation_roc_auc" in metrics and "holdout_validation_roc_auc" not in metrics
    assert metrics["holdout_roc_auc"] == pytest.approx(churn_run.metrics["roc_auc"])
    kind = client.get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"]
    assert kind == "custom_model_development"


def test_the_churn_version_is_described_in_prose_with_its_headline_metric(churn_run, store):
    registry.configure_tracking(store)
    version = MlflowClient().get_model_version("churn", churn_run.registered_version)
    assert version.tags["holdout_metric"] == "roc_auc"
    assert version.description.startswith("LightGBM churn model") and "{" not in version.description
    assert f"ROC-AUC is {churn_run.metrics['roc_auc']:.4f}" in version.description
    assert churn_run.challenger_version is not None


def test_the_study_name_says_what_it_tunes(churn_run):
    name = churn_run.study
    assert name.startswith(f"churn {CHURN_AS_OF}: 90-day activity label, active in the last 30 days")
    assert not re.search(r"[0-9a-f]{12}", name)  # a short data fingerprint, not a hash to decode


# ---------------------------------------------------------------------------------------------
# the stored study, resumed and shared


def quick_objective(trial: optuna.Trial) -> float:
    """The churn search space with a cheap score in place of a LightGBM fit."""
    params = suggest(trial, seed=42)
    time.sleep(0.2)  # long enough for a second job to find the study busy
    return -abs(params.learning_rate - 0.05) - abs(params.feature_fraction - 0.8)


@pytest.fixture()
def tune_cfg(tiny_data: Path, tmp_path: Path):
    cfg = ChurnTrainConfig(data=tiny_data, as_of=CHURN_AS_OF, trials=3, store=Store.at(tmp_path / "store"))
    previous = mlflow.get_tracking_uri()
    registry.experiment("tuning-test", cfg.store)
    yield cfg
    mlflow.set_tracking_uri(previous)  # process-global: give later fixtures the session store back
    mlflow.set_registry_uri(previous)


def distinct_trials(cfg: ChurnTrainConfig, name: str) -> tuple[int, int]:
    trials = optuna.load_study(study_name=name, storage=cfg.store.optuna).trials
    return len(trials), len({tuple(sorted(t.params.items())) for t in trials})


def test_a_resumed_study_says_what_it_has_and_runs_the_trials_asked_for_on_top(tune_cfg):
    said: list[str] = []
    with mlflow.start_run() as parent:
        first = tune(tune_cfg, quick_objective, "study A", said.append)
        second = tune(tune_cfg.model_copy(update={"trials": 2}), quick_objective, "study A", said.append)
    assert (first.trials_before, first.trials_after) == (0, 3)
    assert (second.trials_before, second.trials_after) == (3, 5)
    assert said == [
        "tuning with Optuna: study 'study A', 3 trials",
        "tuning with Optuna: study 'study A', 3 trials stored, running 2 more",
    ]
    assert distinct_trials(tune_cfg, "study A") == (5, 5)  # the resumed sampler draws new trials
    children = MlflowClient().search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == 5


def test_two_jobs_on_one_study_take_turns_and_draw_different_trials(tune_cfg):
    said: list[str] = []
    results: dict[str, object] = {}
    start = threading.Barrier(2)

    def job(key: str) -> None:
        try:
            with mlflow.start_run(run_name=key):  # each thread has its own active run
                start.wait(30)
                results[key] = tune(tune_cfg, quick_objective, "study B", said.append)
        except Exception as exc:  # reported by the assertion below
            results[key] = exc

    threads = [threading.Thread(target=job, args=(key,)) for key in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not [r for r in results.values() if isinstance(r, Exception)], results
    runs = sorted((r.trials_before, r.trials_after) for r in results.values())
    assert runs == [(0, 3), (3, 6)], results
    assert any(m.startswith("waiting for another job that holds optuna study study B") for m in said)
    assert distinct_trials(tune_cfg, "study B") == (6, 6)
