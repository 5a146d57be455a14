"""The main job (``crm demo``): simulate, validate, build features, train, register, promote,
write the retention and win-back lists, measure them, summarise. Wiring only: every step calls a
job of features/, training/ or serving/.

Each step records what it produced in ``<work>/demo_state.json`` together with a key of its
inputs, so a second run skips what is already there, and a run interrupted in the middle starts
again at the first step that did not finish (outputs are written to a temporary name and moved
into place, so a half-written output is never mistaken for a finished one).
"""

from __future__ import annotations

import functools
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from rich.console import Console
from rich.table import Table

from features.families import feature_set_version
from features.store import Store
from features.vocab import DemoPreset, Offer

CHURN_HORIZON_DAYS = 90  # the churn label's horizon (the model's default)


class DemoConfig(BaseModel):
    """What ``crm demo`` runs; every field has a default that works on a fresh machine."""

    model_config = ConfigDict(extra="forbid")

    preset: DemoPreset = "demo"
    seed: int = 42
    work_dir: Path | None = Field(None, validate_default=True)  # None: out/<preset>
    churn_trials: int = Field(10, ge=1)
    # 5, not the model's 8: on the demo preset the training loss is flat after the first few epochs,
    # and every further epoch is a long step on a small machine, which kept `make demo` from a fresh
    # clone over its time budget. None: the model's default.
    recommender_epochs: int | None = Field(5, ge=1)
    churn_top: int = Field(1000, ge=1)
    # The value model's horizon: a 12-month forecast needs a year of targets after a holdout that
    # itself follows a year of training targets; the simulated history is two years long.
    value_horizon_days: int = Field(180, ge=1)
    # a small search: the uplift learners are many (four LightGBMs per offer) and the demo's time
    # budget is tight; `crm train uplift --trials N` resumes the stored studies with more
    uplift_trials: int = Field(3, ge=1)
    plan_offer: Offer | None = None  # None: the offer whose learner ranks its holdout campaign best
    plan_budget: float = Field(10_000.0, gt=0)
    force: bool = False  # rerun every step
    store: Store = Field(default_factory=Store)  # where the models are tracked and registered

    @field_validator("work_dir")
    @classmethod
    def _work_dir_of_preset(cls, work_dir: Path | None, info: ValidationInfo) -> Path | None:
        """Each preset in a folder of its own, so a tiny run never overwrites the demo's outputs."""
        if work_dir is None and "preset" in info.data:
            return Path("out") / info.data["preset"]
        return work_dir


@dataclass
class StepRecord:
    name: str
    key: str
    seconds: float
    outputs: dict[str, Any]


@dataclass
class DemoResult:
    work_dir: Path
    steps: list[StepRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def output(self, step: str, name: str) -> Any:
        for s in self.steps:
            if s.name == step:
                return s.outputs.get(name)
        return None


class StepState:
    """The record of finished steps in ``demo_state.json``; written after every step."""

    def __init__(self, path: Path, force: bool = False) -> None:
        self.path = path
        self.records: dict[str, dict] = {}
        if path.is_file() and not force:
            self.records = json.loads(path.read_text())

    def finished(self, name: str, key: str) -> dict | None:
        rec = self.records.get(name)
        return rec if rec and rec["key"] == key else None

    def key_of(self, name: str) -> str:
        """The key a finished step ran with (chains later steps to it)."""
        return self.records.get(name, {}).get("key", "")

    def save(self, record: StepRecord) -> None:
        self.records[record.name] = {"key": record.key, "seconds": record.seconds, "outputs": record.outputs}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.records, indent=2, default=str))
        tmp.replace(self.path)


def run_step(
    state: StepState,
    result: DemoResult,
    console: Console,
    name: str,
    key: str,
    action: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Run ``action`` unless a finished record with the same key exists; record its outputs."""
    done = state.finished(name, key)
    if done is not None:
        console.print(f"[dim]- {name}: up to date, reused ({done['seconds']:.0f} s when it ran)[/]")
        record = StepRecord(name, key, done["seconds"], done["outputs"])
        result.steps.append(record)
        result.skipped.append(name)
        return done["outputs"]
    console.rule(f"[bold]{name}")
    start = time.perf_counter()
    outputs = action()
    record = StepRecord(name, key, time.perf_counter() - start, outputs)
    state.save(record)
    result.steps.append(record)
    console.print(f"[green]done[/] {name} in {record.seconds:.1f} s")
    return outputs


def synth_step(cfg: DemoConfig, data_dir: Path) -> dict[str, Any]:
    """Simulate the preset into ``data_dir`` (through a temporary folder)."""
    from features.synth import SynthConfig
    from features.synth import run as synth

    tmp = data_dir.with_name(data_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    res = synth(SynthConfig(preset=cfg.preset, seed=cfg.seed, out=tmp), progress=True)
    if data_dir.exists():
        shutil.rmtree(data_dir)
    tmp.rename(data_dir)
    return {"data_dir": str(data_dir), "events": res.events}


def validate_step(data_dir: Path) -> dict[str, Any]:
    """Validate the simulated data against the input contract."""
    from features.contract import validate

    report = validate(data_dir)
    return {
        "rows_clean": {t: r.rows_clean for t, r in report.tables.items()},
        "rejected": {t: r.rows_rejected for t, r in report.tables.items()},
    }


def features_step(data_dir: Path, online_dir: Path) -> dict[str, Any]:
    """Build the online snapshot that serving and the churn list read."""
    from features.online import build_online_snapshot, load_online_snapshot

    path = build_online_snapshot(data_dir, online_dir)
    online = load_online_snapshot(path)
    return {"online_snapshot": str(path), "customers": len(online.snapshot), "as_of": online.as_of}


def holdout_as_of(data_dir: Path, horizon_days: int) -> str:
    """The latest holdout date whose label window still fits in the data."""
    from features.contract import open_validated
    from features.snapshot import data_end

    end = data_end(open_validated(data_dir))
    return f"{(end - timedelta(days=horizon_days)).date():%Y-%m-%d}"


def churn_step(cfg: DemoConfig, data_dir: Path, metrics_dir: Path, console: Console) -> dict[str, Any]:
    """Train, tune and register the churn model on the latest holdout that fits the data."""
    from training.churn import ChurnTrainConfig
    from training.churn import run as train_churn

    as_of = holdout_as_of(data_dir, CHURN_HORIZON_DAYS)
    metrics_json = metrics_dir / "churn.json"
    with console.status("training the churn model") as status:
        result = train_churn(
            ChurnTrainConfig(
                data=data_dir, as_of=as_of, trials=cfg.churn_trials, register_model=True,
                metrics_json=metrics_json, seed=cfg.seed, store=cfg.store,
            ),
            progress=lambda msg: status.update(f"churn: {msg}"),
        )  # fmt: skip
    return {
        "version": result.registered_version,
        "metrics_json": str(metrics_json),
        "roc_auc": round(result.metrics["roc_auc"], 4),
        "holdout": as_of,
    }


def recommender_step(cfg: DemoConfig, data_dir: Path, metrics_dir: Path, console: Console) -> dict[str, Any]:
    """Train and register the recommender on the time split."""
    from training.recommender import RecommenderTrainConfig
    from training.recommender import run as train_recommender

    metrics_json = metrics_dir / "recommender.json"
    extra = {} if cfg.recommender_epochs is None else {"epochs": cfg.recommender_epochs}
    with console.status("training the recommender") as status:
        result = train_recommender(
            RecommenderTrainConfig(
                data=data_dir, split="time", register_model=True, metrics_json=metrics_json,
                seed=cfg.seed, store=cfg.store, **extra,
            ),
            progress=lambda msg: status.update(f"recommender: {msg}"),
        )  # fmt: skip
    return {
        "version": result.registered_version,
        "metrics_json": str(metrics_json),
        "recall_at_10": round(result.metrics["two_tower"].get("recall_at_10", float("nan")), 4),
    }


def value_step(cfg: DemoConfig, data_dir: Path, metrics_dir: Path, console: Console) -> dict[str, Any]:
    """Train and register the value model on the latest holdout its horizon fits."""
    from training.value import ValueTrainConfig
    from training.value import run as train_value

    as_of = holdout_as_of(data_dir, cfg.value_horizon_days)
    metrics_json = metrics_dir / "value.json"
    with console.status("training the value model") as status:
        result = train_value(
            ValueTrainConfig(
                data=data_dir, as_of=as_of, horizon_days=cfg.value_horizon_days, register_model=True,
                metrics_json=metrics_json, seed=cfg.seed, store=cfg.store,
            ),
            progress=lambda msg: status.update(f"value: {msg}"),
        )  # fmt: skip
    return {
        "version": result.registered_version,
        "metrics_json": str(metrics_json),
        "spearman": round(result.metrics["spearman"], 4),
        "holdout": as_of,
    }


def uplift_step(cfg: DemoConfig, data_dir: Path, metrics_dir: Path, console: Console) -> dict[str, Any]:
    """Train and register the uplift model on the simulated randomised campaigns."""
    from training.uplift import GATE_METRIC, UpliftTrainConfig
    from training.uplift import run as train_uplift

    metrics_json = metrics_dir / "uplift.json"
    with console.status("training the uplift model") as status:
        result = train_uplift(
            UpliftTrainConfig(
                data=data_dir, trials=cfg.uplift_trials, register_model=True, metrics_json=metrics_json,
                seed=cfg.seed, store=cfg.store,
            ),
            progress=lambda msg: status.update(f"uplift: {msg}"),
        )  # fmt: skip
    best = max(result.metrics, key=lambda offer: result.metrics[offer]["qini"])
    return {
        "version": result.registered_version,
        "metrics_json": str(metrics_json),
        GATE_METRIC: round(result.gate_metric, 4),
        "best_offer": best,
    }


def retention_plan_step(cfg: DemoConfig, online_dir: Path, out: Path, offer: str) -> dict[str, Any]:
    """A retention plan for ``offer`` on the online snapshot, with a random control group."""
    from serving.plan import RetentionPlanConfig, write_retention_plan

    result = write_retention_plan(
        RetentionPlanConfig(
            offer=offer, budget=cfg.plan_budget, out=out, snapshot=online_dir, store=cfg.store
        )
    )
    plan = result.plan
    return {
        "retention_plan": str(out),
        "offer": offer,
        "treated": plan.treated,
        "control": plan.control,
        "spend": round(plan.spend, 2),
        "expected_value_saved": round(plan.expected_value_saved, 2),
    }


def promote_step(name: str, store: Store, console: Console) -> dict[str, Any]:
    """Promote the challenger of ``name``; a refusal keeps the champion and is no failure."""
    from training.registry import PromotionRefused, get_alias, promote

    try:
        result = promote(name, store=store)
        return {"champion": result.version, "promoted": True}
    except PromotionRefused as refused:
        console.print(f"[yellow]{refused}[/]")
        champion = get_alias(name, "champion", store=store)
        return {"champion": None if champion is None else champion.version, "promoted": False}


def churn_list_step(online_dir: Path, out: Path, top: int, store: Store) -> dict[str, Any]:
    """The ``top`` customers of the snapshot by revenue at risk, as a CSV file."""
    from serving.batch import ChurnListConfig, write_churn_list

    result = write_churn_list(ChurnListConfig(out=out, snapshot=online_dir, top=top, store=store))
    return {
        "churn_list": str(result.out),
        "customers": result.customers,
        "value_at_risk": round(result.value_at_risk, 2),
        "valued_by": result.value_model or "past-year revenue",
    }


def winback_list_step(online_dir: Path, out: Path, top: int, store: Store) -> dict[str, Any]:
    """The ``top`` lapsed customers by the chance of coming back x forecast value, as a CSV file."""
    from serving.batch import WinbackListConfig, write_winback_list

    result = write_winback_list(WinbackListConfig(out=out, snapshot=online_dir, top=top, store=store))
    return {
        "winback_list": str(result.out),
        "customers": result.customers,
        "winback_value": round(result.winback_value, 2),
    }


def list_quality_step(data_dir: Path, as_of: str, metrics_dir: Path, store: Store) -> dict[str, Any]:
    """Both lists at the churn model's holdout date against the simulator's truth (JSON)."""
    import pandas as pd

    from features.contract import open_validated
    from features.snapshot import build_snapshot
    from features.synth.list_quality import measure, measure_winback, truth_at
    from serving.batch import score_lists

    day = pd.Timestamp(as_of)
    snapshot = build_snapshot(open_validated(data_dir), day)
    lists = score_lists(snapshot, store)
    truth = truth_at(data_dir, day, CHURN_HORIZON_DAYS, snapshot)
    doc = {"as_of": as_of, "horizon_days": CHURN_HORIZON_DAYS, "valued_by": lists.value_model}
    doc |= measure(truth, lists.scored)
    if lists.winback is not None:
        doc["winback"] = measure_winback(truth, lists.winback)
    path = metrics_dir / "list_quality.json"
    path.write_text(json.dumps(doc, indent=2, default=str))
    return {"metrics_json": str(path), "as_of": as_of}


def run(cfg: DemoConfig, console: Console | None = None) -> DemoResult:
    """Run the pipeline on a synthetic preset, reusing finished steps."""
    console = console or Console(stderr=True)
    work = cfg.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    data_dir, online_dir, metrics_dir = work / "data", work / "online", work / "metrics"
    metrics_dir.mkdir(exist_ok=True)
    state = StepState(work / "demo_state.json", force=cfg.force)
    result = DemoResult(work_dir=work)
    step = functools.partial(run_step, state, result, console)

    # a step's key names everything it depends on, so a change reruns it and what follows
    from features.synth import simulator_version

    data_key = f"synth:{cfg.preset}:{cfg.seed}:{simulator_version()}"
    # the snapshot and the churn model change with the feature declarations and the churn label
    features_key = f"{data_key}|features:{feature_set_version()}"
    store_key = f"{data_key}|store:{cfg.store.tracking}"
    step("simulate", data_key, lambda: synth_step(cfg, data_dir))
    step("validate", data_key, lambda: validate_step(data_dir))
    step("online snapshot", features_key, lambda: features_step(data_dir, online_dir))
    step("train churn", f"{store_key}|{features_key}|trials:{cfg.churn_trials}",
         lambda: churn_step(cfg, data_dir, metrics_dir, console))  # fmt: skip
    step("promote churn", f"{store_key}|{state.key_of('train churn')}",
         lambda: promote_step("churn", cfg.store, console))  # fmt: skip
    step("train recommender", f"{store_key}|epochs:{cfg.recommender_epochs}",
         lambda: recommender_step(cfg, data_dir, metrics_dir, console))  # fmt: skip
    step("promote recommender", f"{store_key}|{state.key_of('train recommender')}",
         lambda: promote_step("recommender", cfg.store, console))  # fmt: skip
    step("train value", f"{store_key}|{features_key}|horizon:{cfg.value_horizon_days}",
         lambda: value_step(cfg, data_dir, metrics_dir, console))  # fmt: skip
    step("promote value", f"{store_key}|{state.key_of('train value')}",
         lambda: promote_step("value", cfg.store, console))  # fmt: skip
    lists_key = (
        f"{store_key}|{state.key_of('promote churn')}|{state.key_of('promote value')}|top:{cfg.churn_top}"
    )
    step("churn list", lists_key,
         lambda: churn_list_step(online_dir, work / "churn_list.csv", cfg.churn_top, cfg.store))  # fmt: skip
    winback_csv = work / "winback_list.csv"
    step("win-back list", lists_key,
         lambda: winback_list_step(online_dir, winback_csv, cfg.churn_top, cfg.store))  # fmt: skip
    step("list quality", lists_key,
         lambda: list_quality_step(data_dir, state.records["train churn"]["outputs"]["holdout"], metrics_dir,
                                   cfg.store))  # fmt: skip
    step("train uplift", f"{store_key}|{features_key}|trials:{cfg.uplift_trials}",
         lambda: uplift_step(cfg, data_dir, metrics_dir, console))  # fmt: skip
    step("promote uplift", f"{store_key}|{state.key_of('train uplift')}",
         lambda: promote_step("uplift", cfg.store, console))  # fmt: skip
    offer = cfg.plan_offer or state.records["train uplift"]["outputs"]["best_offer"]
    plan_key = f"{store_key}|{state.key_of('promote uplift')}|{lists_key}|{offer}|budget:{cfg.plan_budget}"
    step("retention plan", plan_key,
         lambda: retention_plan_step(cfg, online_dir, work / "retention_plan.csv", offer))  # fmt: skip
    return result


def headline_table(result: DemoResult) -> Table:
    """Headline metrics against their baselines, from the metrics JSON files."""
    table = Table(title="model quality on the holdout")
    for col in ("model", "metric", "model value", "baseline", "reference"):
        table.add_column(col)
    churn_json = result.output("train churn", "metrics_json")
    if churn_json and Path(churn_json).is_file():
        m = json.loads(Path(churn_json).read_text())["metrics"]
        oracle = f"oracle {m['oracle_roc_auc']:.3f}" if "oracle_roc_auc" in m else ""
        recency = f"recency {m['baseline_recency_roc_auc']:.3f}"
        table.add_row("churn", "ROC-AUC", f"{m['roc_auc']:.3f}", recency, oracle)
    rec_json = result.output("train recommender", "metrics_json")
    if rec_json and Path(rec_json).is_file():
        doc = json.loads(Path(rec_json).read_text())
        models = doc["models"]
        best = max((n for n in models if n not in ("two_tower", "oracle")), key=lambda n: models[n]["recall"])
        oracle = f"oracle {models['oracle']['recall']:.3f}" if "oracle" in models else ""
        table.add_row("recommender", f"Recall@{doc['k']}", f"{models['two_tower']['recall']:.3f}",
                      f"{best} {models[best]['recall']:.3f}", oracle)  # fmt: skip
    value_json = result.output("train value", "metrics_json")
    if value_json and Path(value_json).is_file():
        doc = json.loads(Path(value_json).read_text())
        last = doc["baselines"]["last_year_spend"]["spearman"]
        btyd = doc["baselines"]["bgnbd_gamma_gamma"]["spearman"]
        table.add_row("value", "Spearman", f"{doc['metrics']['spearman']:.3f}", f"last year {last:.3f}",
                      f"BG/NBD+GG {btyd:.3f}")  # fmt: skip
    uplift_json = result.output("train uplift", "metrics_json")
    if uplift_json and Path(uplift_json).is_file():
        offers = json.loads(Path(uplift_json).read_text())["metrics"].values()

        def mean(key: str) -> float:
            return sum(m.get(key, float("nan")) for m in offers) / len(offers)

        oracle = f"oracle {mean('qini_oracle'):.4f}" if all("qini_oracle" in m for m in offers) else ""
        table.add_row("uplift", "Qini, mean of offers", f"{mean('qini'):.4f}",
                      f"churn risk {mean('qini_risk_ranking'):.4f}", oracle)  # fmt: skip
    return table


def list_quality_table(result: DemoResult) -> Table | None:
    """The lists against the simulator's truth at the churn holdout date, beside the truth's best."""
    path = result.output("list quality", "metrics_json")
    if not path or not Path(path).is_file():
        return None
    doc = json.loads(Path(path).read_text())
    table = Table(title=f"the lists against the simulator's truth, as of {doc['as_of']}")
    for col in ("list", "measure", "list value", "best possible / base rate"):
        table.add_column(col)
    by_p, hazard = doc["retention_by_probability"], doc["true_hazard"]
    table.add_row(
        "retention, by probability",
        "true leavers in the top 1,000",
        f"{by_p['true_leavers_top_1000']:.1%}",
        f"{hazard['true_leavers_top_1000']:.1%} by true hazard; base {doc['base_rate_alive']:.1%}",
    )
    table.add_row(
        "retention, by expected loss",
        "leavers' revenue caught by the top 1,000",
        f"{doc['revenue_caught_top_1000']:,.0f}",
        f"{doc['revenue_caught_best_1000']:,.0f} best",
    )
    table.add_row(
        "retention",
        "already gone in the top 1,000",
        f"{doc['retention_by_expected_loss']['lapsed_share_top_1000']:.1%}",
        "0%",
    )
    if "winback" in doc:
        w = doc["winback"]
        table.add_row(
            "win-back",
            "still there to win back, top 1,000",
            f"{w['winnable_top_1000']:.1%}",
            f"{w['winnable_base_rate_lapsed']:.1%} of all lapsed",
        )
    return table  # fmt: skip


def summary_table(result: DemoResult) -> Table:
    """One row per step: its time and its outputs."""
    table = Table(title=f"crm demo: {result.work_dir}")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    table.add_column("outputs")
    for s in result.steps:
        shown = ", ".join(f"{k}={v}" for k, v in s.outputs.items() if not isinstance(v, dict | list))
        reused = " (reused)" if s.name in result.skipped else ""
        table.add_row(s.name + reused, f"{s.seconds:.1f}", shown)
    return table
