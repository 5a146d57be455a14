"""The main job (``crm demo``): simulate, validate, build features, train, register, promote,
write a churn list, summarise. Wiring only: every step calls a job of features/, training/ or
serving/.

Each step records what it produced in ``<work>/demo_state.json`` together with a key of its
inputs, so a second run skips what is already there, and a run interrupted in the middle starts
again at the first step that did not finish (outputs are written to a temporary name and moved
into place, so a half-written output is never mistaken for a finished one).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.table import Table


class DemoConfig(BaseModel):
    """What ``crm demo`` runs; every field has a default that works on a fresh machine."""

    model_config = ConfigDict(extra="forbid")

    preset: str = "demo"
    seed: int = 42
    work_dir: Path = Path("out/demo")
    churn_trials: int = 10
    recommender_epochs: int | None = None  # None: the model's default
    churn_top: int = 1000
    force: bool = False  # rerun every step


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
    from features.contract import validate

    report = validate(data_dir)
    return {
        "rows_clean": {t: r.rows_clean for t, r in report.tables.items()},
        "rejected": {t: r.rows_rejected for t, r in report.tables.items()},
    }


def run(cfg: DemoConfig, console: Console | None = None) -> DemoResult:
    """Run the pipeline on a synthetic preset, reusing finished steps."""
    console = console or Console(stderr=True)
    work = cfg.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    data_dir = work / "data"
    state = StepState(work / "demo_state.json", force=cfg.force)
    result = DemoResult(work_dir=work)

    data_key = f"synth:{cfg.preset}:{cfg.seed}"
    run_step(state, result, console, "simulate", data_key, lambda: synth_step(cfg, data_dir))
    run_step(state, result, console, "validate", data_key, lambda: validate_step(data_dir))
    return result


def summary_table(result: DemoResult) -> Table:
    table = Table(title=f"crm demo: {result.work_dir}")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    table.add_column("outputs")
    for s in result.steps:
        shown = ", ".join(f"{k}={v}" for k, v in s.outputs.items() if not isinstance(v, dict | list))
        reused = " (reused)" if s.name in result.skipped else ""
        table.add_row(s.name + reused, f"{s.seconds:.1f}", shown)
    return table
