"""The uplift model and the retention plan measured against the simulator's truth. JSON on stdout.

    python -m bench.uplift --data DIR [--offer coupon] [--campaign ID] [--budget N]
        [--model-uri URI] [--value-model-uri URI] [--churn-model-uri URI] [--store DIR] [--out FILE]

On one randomised campaign of the offer (by default its last one: the uplift model's holdout when
trained with the default split), with every customer's snapshot at the campaign's start:

- ``qini``: the uplift model's Qini coefficient on the campaign's realised outcomes, beside
  ``qini_oracle`` (ranking by the true effects of ``truth/campaigns``) and ``qini_churn_risk``
  (ranking by churn risk x value); ``qini_share_of_oracle`` is the first over the second. The
  realised outcomes are noisy (a random ranking's Qini varies by about a fifth of the oracle's on
  a demo campaign), so ``qini_share_of_oracle_on_true_effects`` gives the same share with the true
  effects in place of the outcomes;
- ``value_saved``: the true value saved, ``sum(true uplift x value - cost)``, by three plans of
  the same size drawn from the campaign's audience: the retention plan (``serving.plan``: uplift x
  value - cost, positive only, as many as the budget pays for), the same number of customers
  ranked by churn risk x value, and the plan from the true effects (the oracle). ``value`` is the
  value model's forecast for all three, so they differ only in whom they pick;
- ``measure``: ``crm campaign measure`` on every campaign of the data, its 95% interval of the
  retention effect against the true average effect of the campaign's offer on its audience.

Churn risk is the churn model's probability (``--churn-model-uri``), or, without one, the uplift
model's own chance of not being retained without the offer (``churn_risk_source`` says which).
The budget defaults to the offer's cost for a fifth of the audience.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bench import emit
from features.campaigns import campaign_frame, find_campaign, list_campaigns, measure_campaign
from features.contract import open_validated
from features.errors import UserError
from features.store import Store
from features.synth import true_campaign_effects
from serving.batch import load_value_model
from serving.churn_scoring import customer_values
from serving.plan import load_uplift_model, plan_audience
from training.uplift import qini_coefficient, true_uplift

BARS = {"value_saved_over_churn_risk_plan": 1.5, "qini_share_of_oracle": 0.7}


def churn_risk(frame: pd.DataFrame, uplift_model, offer: str, uri: str | None, store: Store) -> tuple:
    """(churn probability per row, where it came from)."""
    if uri:
        from serving.registry import load_python_model, resolve_model_uri

        try:
            model = load_python_model(resolve_model_uri(uri, store.tracking).location)
            return model.score(frame, with_reasons=False)["churn_probability"].to_numpy(), uri
        except UserError:
            pass
    return 1 - uplift_model.retention_without_offer(frame, offer), "uplift model (no offer)"


def plans(frame: pd.DataFrame, cost: float, budget: float) -> dict[str, pd.DataFrame]:
    """The three plans of the module's docstring, of the retention plan's size."""
    uplift_plan = plan_audience(frame, cost, budget, control_share=0.0)
    size = len(uplift_plan)
    by_risk = frame.assign(score=frame["risk"] * frame["customer_value"])
    by_truth = frame.assign(expected_value_saved=frame["true_uplift"] * frame["customer_value"] - cost)
    oracle = plan_audience(by_truth, cost, budget, control_share=0.0)
    return {
        "uplift_plan": uplift_plan,
        "churn_risk_plan": by_risk.sort_values(["score", "customer_id"], ascending=[False, True]).head(size),
        "oracle_plan": oracle,
    }


def expected_qini(score: np.ndarray, true: np.ndarray) -> float:
    """The Qini coefficient with the true effects in place of the realised outcomes (the curve is the
    true extra customers retained by treating the top ``k``): free of the outcomes' noise."""
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    gain = np.concatenate([[0.0], np.cumsum(np.asarray(true, dtype=float)[order])])
    return float((gain - np.linspace(0.0, gain[-1], len(gain))).mean() / max(len(true), 1))


def true_value_saved(plan: pd.DataFrame, cost: float) -> float:
    return float((plan["true_uplift"] * plan["customer_value"] - cost).sum())


def measurements(con, truth: pd.DataFrame) -> dict[str, dict]:
    """Every campaign's measured retention effect with its interval, against the true one."""
    out = {}
    for campaign in list_campaigns(con):
        m = measure_campaign(con, campaign.campaign_id)
        own = truth[(truth["campaign_id"] == campaign.campaign_id) & (truth["offer"] == campaign.offer)]
        true = float(own["uplift"].mean())
        out[campaign.campaign_id] = {
            "offer": campaign.offer,
            "treated": m.treated,
            "control": m.control,
            "effect": round(m.retention.difference, 5),
            "low": round(m.retention.low, 5),
            "high": round(m.retention.high, 5),
            "true_effect": round(true, 5),
            "covered": bool(m.retention.low <= true <= m.retention.high),
        }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a simulated data folder (with truth/)")
    parser.add_argument("--offer", default="coupon")
    parser.add_argument("--campaign", help="the campaign to plan on (default: the offer's last)")
    parser.add_argument("--budget", type=float, help="the plans' budget (default: a fifth of the audience)")
    parser.add_argument("--model-uri", default="models:/uplift@champion")
    parser.add_argument("--value-model-uri", default="models:/value@champion")
    parser.add_argument("--churn-model-uri", default="models:/churn@champion")
    parser.add_argument("--store", type=Path, help="the store folder (default: CRM_STORE_DIR)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)

    store = Store.at(args.store) if args.store else Store.from_env()
    con = open_validated(args.data)
    offer_campaigns = [c for c in list_campaigns(con) if c.offer == args.offer]
    if not offer_campaigns and not args.campaign:
        sys.exit(f"error: no campaign of the offer {args.offer!r} in {args.data}")
    campaign = find_campaign(con, args.campaign) if args.campaign else offer_campaigns[-1]
    frame = campaign_frame(con, campaign).assign(offer=campaign.offer)
    uplift_model, uplift_uri = load_uplift_model(args.model_uri, store)
    value_model, value_uri = load_value_model(args.value_model_uri, store)
    cost = uplift_model.learners[campaign.offer].cost
    truth = true_campaign_effects(args.data)
    risk, risk_source = churn_risk(frame, uplift_model, campaign.offer, args.churn_model_uri, store)
    uplift = uplift_model.uplift(frame, campaign.offer)
    value = customer_values(value_model, frame)
    scored = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy(),
            "uplift": uplift,
            "risk": risk,
            "customer_value": value,
            "expected_value_saved": uplift * value - cost,
            "true_uplift": true_uplift(truth, frame),
        }
    )
    budget = args.budget if args.budget is not None else cost * round(0.2 * len(frame))
    drawn = plans(scored, cost, budget)
    saved = {name: round(true_value_saved(plan, cost), 2) for name, plan in drawn.items()}
    treated, retained = frame["treated"].to_numpy(), frame["retained"].to_numpy()
    qini = qini_coefficient(uplift, treated, retained)
    qini_oracle = qini_coefficient(scored["true_uplift"], treated, retained)
    measured = measurements(con, truth)
    # a churn-risk plan that saves nothing or loses has no ratio: the bar is then a plan that saves
    ratio = saved["uplift_plan"] / saved["churn_risk_plan"] if saved["churn_risk_plan"] > 0 else None
    beats = saved["uplift_plan"] > 0 if ratio is None else ratio >= BARS["value_saved_over_churn_risk_plan"]
    share = qini / qini_oracle if qini_oracle else 0.0
    expected_share = expected_qini(uplift, scored["true_uplift"]) / expected_qini(
        scored["true_uplift"], scored["true_uplift"]
    )
    doc = {
        "data": str(args.data),
        "offer": campaign.offer,
        "campaign": campaign.campaign_id,
        "customers": len(frame),
        "cost": round(cost, 4),
        "budget": round(budget, 2),
        "plan_size": len(drawn["uplift_plan"]),
        "qini": round(qini, 6),
        "qini_oracle": round(qini_oracle, 6),
        "qini_churn_risk": round(qini_coefficient(risk * value, treated, retained), 6),
        "qini_share_of_oracle": round(share, 4),
        "qini_share_of_oracle_on_true_effects": round(expected_share, 4),
        "qini_churn_risk_share_of_oracle_on_true_effects": round(
            expected_qini(risk * value, scored["true_uplift"])
            / expected_qini(scored["true_uplift"], scored["true_uplift"]),
            4,
        ),
        "value_saved": saved,
        "value_saved_over_churn_risk_plan": None if ratio is None else round(ratio, 4),
        "value_saved_share_of_oracle": round(saved["uplift_plan"] / saved["oracle_plan"], 4)
        if saved["oracle_plan"]
        else None,
        "spearman_true_uplift": round(
            float(pd.Series(uplift).corr(scored["true_uplift"], method="spearman")), 4
        ),
        "measure": measured,
        "measure_coverage": f"{sum(m['covered'] for m in measured.values())}/{len(measured)}",
        "holdout_measure_covers_truth": measured[campaign.campaign_id]["covered"],
        "bars": {
            "value_saved_over_churn_risk_plan": bool(beats),
            "qini_share_of_oracle": bool(share >= BARS["qini_share_of_oracle"]),
            "holdout_measure_covers_truth": measured[campaign.campaign_id]["covered"],
        },
        "models": {"uplift": uplift_uri, "value": value_uri, "churn_risk_source": risk_source},
    }
    emit(doc, args.out, default=_plain)


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


if __name__ == "__main__":
    main()
