"""Retention plans: whom to send an offer, by the value it saves, with a random control group.

Each customer of the snapshot is scored by

    expected value saved = uplift x forecast value - offer cost

(the uplift model's change in the chance of being retained if sent the offer, the value model's
forecast of net revenue if the customer stays). Only customers with a positive expected value
saved are candidates. The plan's audience is the top of the candidates, as many as the budget
pays for once a random ``control_share`` of the audience is held out: the control group is drawn
at random from the same audience, so it has the treated customers' distribution of risk and value
and the campaign can be measured afterwards (``crm campaign measure``). The plan is written in the
columns of the contract's ``campaigns`` table, plus the scores.

:func:`plan_audience` is the pure ranking and draw; :func:`retention_plan` scores a snapshot with
the loaded models (what ``crm retention-plan`` and the service call); :func:`write_retention_plan`
is the batch job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from features.errors import UserError
from features.store import Store
from features.vocab import CHANNELS, CONTROL, TREATMENT, Offer

if TYPE_CHECKING:
    from serving.uplift_model import UpliftModel
    from serving.value_model import ValueModel

OUTPUT_SUFFIXES = (".csv", ".parquet")
# The columns of the contract's campaigns table, first in a written plan.
CAMPAIGN_COLUMNS = ("customer_id", "campaign_id", "ts", "arm", "offer", "channel", "cost")
UPLIFT_MARK = "learners"  # the attribute that tells an uplift model from the others


def score_customers(
    snapshot: pd.DataFrame, uplift_model: UpliftModel, value_model: ValueModel | None, offer: str, cost: float
) -> pd.DataFrame:
    """``customer_id, uplift, risk, customer_value, expected_value_saved`` of every snapshot row.

    ``risk`` is the chance of not being retained without the offer; without a value model the
    customer value is the snapshot's past-year revenue (as the churn list does).
    """
    from serving.churn_scoring import customer_values

    frame = snapshot.reset_index() if "customer_id" not in snapshot.columns else snapshot
    frame = frame.reset_index(drop=True)
    uplift = uplift_model.uplift(frame, offer)
    value = customer_values(value_model, frame)
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype(str).to_numpy(),
            "uplift": uplift,
            "risk": 1.0 - uplift_model.retention_without_offer(frame, offer),
            "customer_value": value,
            "expected_value_saved": uplift * value - cost,
        }
    )


def plan_audience(
    scored: pd.DataFrame, cost: float, budget: float, control_share: float, seed: int = 0
) -> pd.DataFrame:
    """The plan from scored customers (``customer_id, expected_value_saved`` and any other columns):
    the candidates with a positive expected value saved, best first, as many as ``budget`` pays for
    with ``control_share`` of them held out at random; adds ``rank`` and ``arm``.

    The treated customers never cost more than the budget; the control group is a uniform random
    draw (``seed``) from the same audience, so it has the treated customers' distribution.
    """
    if budget < 0 or cost < 0:
        raise UserError("The budget and the offer's cost must not be negative.")
    if not 0 <= control_share < 1:
        raise UserError(f"The control share must lie in [0, 1), got {control_share}.")
    candidates = scored[scored["expected_value_saved"] > 0]
    candidates = candidates.sort_values(
        ["expected_value_saved", "customer_id"], ascending=[False, True], kind="stable"
    )
    size = audience_size(len(candidates), cost, budget, control_share)
    audience = candidates.head(size).reset_index(drop=True)
    n_control = int(round(control_share * size))
    rng = np.random.default_rng(seed)
    control = np.zeros(size, dtype=bool)
    control[rng.choice(size, n_control, replace=False)] = True
    audience.insert(0, "rank", np.arange(1, size + 1))
    audience.insert(2, "arm", np.where(control, CONTROL, TREATMENT))
    return audience


def audience_size(candidates: int, cost: float, budget: float, control_share: float) -> int:
    """The largest audience of at most ``candidates`` whose treated part (all but the rounded
    control share) the budget pays for."""
    if cost == 0:
        return candidates
    affordable = int(np.floor(budget / cost + 1e-9))  # treated customers the budget pays for
    size = min(candidates, int(np.floor(affordable / (1 - control_share))) + 1)
    while size > 0 and size - int(round(control_share * size)) > affordable:
        size -= 1
    return size


@dataclass
class RetentionPlan:
    """A plan: one row per customer of the audience (campaigns-table columns and the scores)."""

    customers: pd.DataFrame
    offer: str
    cost: float
    budget: float
    control_share: float

    @property
    def treated(self) -> int:
        return int((self.customers["arm"] == TREATMENT).sum())

    @property
    def control(self) -> int:
        return int((self.customers["arm"] == CONTROL).sum())

    @property
    def spend(self) -> float:
        """What the treated customers' offers cost."""
        return float(self.treated * self.cost)

    @property
    def expected_value_saved(self) -> float:
        """The expected value saved by treating the treated customers."""
        treated = self.customers["arm"] == TREATMENT
        return float(self.customers.loc[treated, "expected_value_saved"].sum())


def retention_plan(
    snapshot: pd.DataFrame,
    uplift_model: UpliftModel,
    value_model: ValueModel | None,
    offer: str,
    budget: float,
    control_share: float = 0.1,
    cost: float | None = None,
    seed: int = 0,
    campaign_id: str | None = None,
    start: datetime | None = None,
    channel: str | None = None,
) -> RetentionPlan:
    """Score a snapshot and draw the plan (see the module's docstring); ``cost`` defaults to the
    mean cost per treated customer of the offer's campaigns the uplift model learnt from."""
    uplift_model.check_offer(offer)
    cost = uplift_model.learners[offer].cost if cost is None else float(cost)
    scored = score_customers(snapshot, uplift_model, value_model, offer, cost)
    audience = plan_audience(scored, cost, budget, control_share, seed)
    start = start or datetime.now().replace(microsecond=0)
    treated = audience["arm"] == TREATMENT
    audience.insert(2, "campaign_id", campaign_id or f"PLAN-{start:%Y%m%d}-{offer}")
    audience.insert(3, "ts", pd.Timestamp(start))
    audience.insert(5, "offer", offer)
    audience.insert(6, "channel", channel)
    audience.insert(7, "cost", np.where(treated, cost, 0.0))
    order = [*CAMPAIGN_COLUMNS, "rank", "uplift", "risk", "customer_value", "expected_value_saved"]
    return RetentionPlan(audience[order], offer, cost, budget, control_share)


# ---------------------------------------------------------------------------------------------
# the batch job: crm retention-plan


class RetentionPlanConfig(BaseModel):
    """What ``crm retention-plan`` does."""

    model_config = ConfigDict(extra="forbid")

    offer: Offer
    budget: float = Field(gt=0)
    out: Path
    snapshot: Path  # the online snapshot folder
    control_share: float = Field(0.1, ge=0.0, le=0.95)  # the CLI and the API take the same range
    cost: float | None = Field(None, ge=0.0)  # None: the offer's mean cost in its campaigns
    campaign_id: str | None = None
    channel: Literal[CHANNELS] | None = None  # type: ignore[valid-type]
    seed: int = 0
    model_uri: str = "models:/uplift@champion"
    value_model_uri: str | None = "models:/value@champion"
    store: Store = Field(default_factory=Store)


@dataclass
class RetentionPlanResult:
    out: Path
    plan: RetentionPlan
    uplift_model: str
    value_model: str | None  # the pinned value model URI; None: values are past-year revenue


def load_uplift_model(model_uri: str, store: Store) -> tuple[UpliftModel, str]:
    """The uplift model behind ``model_uri`` and its pinned URI."""
    from serving.registry import load_registered

    loaded = load_registered(model_uri, store.tracking, UPLIFT_MARK, "an uplift model")
    return loaded.model, loaded.uri


def write_retention_plan(cfg: RetentionPlanConfig) -> RetentionPlanResult:
    """Score the online snapshot, draw the plan and write it (CSV or Parquet, atomically)."""
    from features.online import load_online_snapshot
    from serving.batch import load_value_model

    if cfg.out.suffix not in OUTPUT_SUFFIXES:
        raise UserError(f"Output {cfg.out} must end in .csv or .parquet.")
    online = load_online_snapshot(cfg.snapshot)
    uplift_model, uplift_uri = load_uplift_model(cfg.model_uri, cfg.store)
    value_model, value_uri = load_value_model(cfg.value_model_uri, cfg.store)
    start = pd.Timestamp(online.as_of).to_pydatetime()
    plan = retention_plan(
        online.snapshot, uplift_model, value_model, cfg.offer, cfg.budget, cfg.control_share, cfg.cost,
        cfg.seed, cfg.campaign_id, start, cfg.channel,
    )  # fmt: skip
    write_plan(plan.customers, cfg.out)
    return RetentionPlanResult(cfg.out, plan, uplift_uri, value_uri)


def write_plan(frame: pd.DataFrame, out: Path) -> None:
    """A plan as CSV or Parquet, atomically (a reader never sees half a plan)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp" + out.suffix)
    money = ["cost", "customer_value", "expected_value_saved"]  # to cents, as the lists are
    frame = frame.assign(**{c: frame[c].round(2) for c in money}, uplift=frame["uplift"].round(6))
    frame = frame.assign(risk=frame["risk"].round(6))
    if out.suffix == ".csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_parquet(tmp, index=False)
    tmp.replace(out)
