"""How much of the oracle's Qini the snapshot allows: a learner taught the true effects. JSON out.

    python -m bench.uplift_ceiling --data DIR [--offers coupon,...] [--out FILE]

The uplift model learns from realised outcomes, which are noisy: a customer is retained or not, in
one arm only. Its ceiling is a model that learns from the *true* effect of the offer on every
training customer (``truth/campaigns``, the simulator's chance of being retained with the offer
less without it), with the same inputs (the snapshot at each campaign's start) and the same
campaign split as ``crm train uplift``: a LightGBM regressor on the true effects of the training
campaigns, scored on the holdout campaign. No learner from outcomes can beat it in expectation
(it sees noise-free targets for the same customers), so its Qini share of the oracle's bounds what
the bar of 0.7 asks of the uplift model.

Per offer: the holdout's Qini of the ceiling, of the uplift champion (``--model-uri``) and of the
oracle (ranking by the true effects), on the realised outcomes and with the true effects in place
of the outcomes (``expected``, free of the outcomes' noise; see :func:`bench.uplift.expected_qini`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from bench import emit
from bench.uplift import expected_qini
from features.campaigns import campaign_frame, list_campaigns
from features.contract import open_validated
from features.store import Store
from features.synth import true_campaign_effects
from training.uplift import (
    UpliftParams,
    categorical_levels,
    feature_columns,
    qini_coefficient,
    split_campaigns,
    true_uplift,
)


def ceiling_scores(train, holdout, encode, seed: int) -> np.ndarray:
    """A LightGBM regressor fitted to the training rows' true effects, scored on the holdout."""
    from lightgbm import LGBMRegressor

    # noise-free targets carry more signal than outcomes: a larger tree than the uplift model's
    params = UpliftParams(
        n_estimators=300, learning_rate=0.03, num_leaves=15, min_child_samples=50, seed=seed
    )
    model = LGBMRegressor(**params.lgb())
    model.fit(encode(train), train["true_uplift"].to_numpy())
    return model.predict(encode(holdout))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a simulated data folder (with truth/)")
    parser.add_argument("--offers", help="comma-separated offers (default: every offer with two campaigns)")
    parser.add_argument("--model-uri", default="models:/uplift@champion", help="the uplift model to compare")
    parser.add_argument("--store", type=Path, help="the store folder (default: CRM_STORE_DIR)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    from serving.plan import load_uplift_model
    from serving.uplift_model import UpliftModel

    store = Store.at(args.store) if args.store else Store.from_env()
    con = open_validated(args.data)
    truth = true_campaign_effects(args.data)
    splits = split_campaigns(list_campaigns(con), args.offers.split(",") if args.offers else None)
    try:
        champion, champion_uri = load_uplift_model(args.model_uri, store)
    except Exception as exc:  # no champion: the ceiling alone still answers the question
        champion, champion_uri = None, f"none ({exc})"
    out = {"data": str(args.data), "uplift_model": champion_uri, "offers": {}}
    for offer, split in splits.items():
        train_campaigns = split.train if split.holdout_is_validation else [*split.train, split.valid]
        frames = [campaign_frame(con, c).assign(offer=c.offer) for c in [*train_campaigns, split.holdout]]
        frames = [f.assign(true_uplift=true_uplift(truth, f)) for f in frames]
        train, holdout = pd.concat(frames[:-1], ignore_index=True), frames[-1]
        encoder = UpliftModel([], feature_columns(), categorical_levels(train), 0, 1)
        treated, retained = holdout["treated"].to_numpy(), holdout["retained"].to_numpy()
        true = holdout["true_uplift"].to_numpy()
        scores = {"ceiling": ceiling_scores(train, holdout, encoder.matrix, args.seed), "oracle": true}
        if champion is not None and offer in champion.offers:
            scores["uplift_model"] = champion.uplift(holdout, offer)
        oracle_q, oracle_e = qini_coefficient(true, treated, retained), expected_qini(true, true)
        figures = {
            "holdout": split.holdout.campaign_id,
            "train_customers": len(train),
            "holdout_customers": len(holdout),
        }
        for name, score in scores.items():
            q, e = qini_coefficient(score, treated, retained), expected_qini(score, true)
            figures[name] = {
                "qini": round(q, 6),
                "qini_share_of_oracle": round(q / oracle_q, 4) if oracle_q else None,
                "expected_qini_share_of_oracle": round(e / oracle_e, 4) if oracle_e else None,
                "spearman_true_uplift": round(
                    float(pd.Series(score).corr(pd.Series(true), method="spearman")), 4
                ),
            }
        out["offers"][offer] = figures
    emit(out, args.out)


if __name__ == "__main__":
    main()
