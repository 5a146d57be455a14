"""How far the churn features can go on a real split: the CDNOW bar (ROC-AUC 0.81) against the
ceiling of the snapshot's information. JSON on stdout.

    python bench/churn_ceiling.py [--data DIR] [--as-of 1998-01-01] [--horizon-days 181] [--folds 5]

Without ``--data`` it imports CDNOW (the ``lifetimes`` wheel's copy) into a temporary folder, as
``crm data import cdnow`` does. On the split of ``crm train churn`` (population ``all``) it reports:

- models trained as ``crm train churn`` trains them, on the earlier as-of dates of its schedule,
  scored on the holdout: LightGBM with the default parameters (the first Optuna trial) and, for
  comparison, a logistic regression on ``log1p`` of the numeric features;
- the ceiling: a k-fold cross-validation on the holdout's own labels (in-distribution, so more
  than any model trained on earlier dates can get) with shallow LightGBM and the logistic model;
- the recency-only score, and the target.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from features.contract import open_validated  # noqa: E402
from features.families import categorical_features  # noqa: E402
from features.labels import churn_training_set  # noqa: E402
from features.public import import_dataset  # noqa: E402
from training.churn import ChurnParams, ChurnTrainConfig, feature_columns, fit, recency_score, schedule  # noqa: E402

TARGET = 0.81
SHALLOW = dict(objective="binary", learning_rate=0.01, num_leaves=4, min_child_samples=300,
               feature_fraction=0.8, bagging_fraction=0.8, bagging_freq=1, verbose=-1, seed=0)  # fmt: skip


def log_matrix(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """``log1p`` of each numeric feature, nulls and negatives as 0 (every CDNOW customer has bought,
    so the recency features have no nulls there): a smooth scale for a linear model."""
    return np.column_stack([np.log1p(frame[c].astype(float).fillna(0).clip(lower=0)) for c in columns])


def logistic() -> object:
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))


def cross_validated(frame: pd.DataFrame, columns: list[str], folds: int) -> dict[str, float]:
    """Out-of-fold ROC-AUC on ``frame``'s own labels, shallow LightGBM and logistic."""
    y = frame["churned"].to_numpy()
    trees, linear = np.zeros(len(y)), np.zeros(len(y))
    x_log = log_matrix(frame, columns)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(x_log, y):
        booster = lgb.train(SHALLOW, lgb.Dataset(frame[columns].iloc[train], y[train]), 1500)
        trees[test] = booster.predict(frame[columns].iloc[test])
        linear[test] = logistic().fit(x_log[train], y[train]).predict_proba(x_log[test])[:, 1]
    return {"lightgbm": roc_auc_score(y, trees), "logistic_log_features": roc_auc_score(y, linear)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a contract folder (default: CDNOW, imported here)")
    parser.add_argument("--as-of", default="1998-01-01")
    parser.add_argument("--horizon-days", type=int, default=181)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "cdnow"
            import_dataset("cdnow", data)
        cfg = ChurnTrainConfig(data=data, as_of=args.as_of, horizon_days=args.horizon_days, population="all")
        con = open_validated(data)
        train_dates, valid_date, holdout_date = schedule(
            cfg, con.execute("SELECT min(ts) FROM events").fetchone()[0]
        )
        windows = dict(horizon_days=cfg.horizon_days, lookback_days=cfg.lookback_days, population="all")
        train = churn_training_set(con, train_dates, **windows)
        valid = churn_training_set(con, [valid_date], **windows)
        holdout = churn_training_set(con, [holdout_date], **windows)
        con.close()
    y = holdout["churned"].to_numpy()
    numeric = [c for c in feature_columns() if c not in categorical_features()]
    model, rounds = fit(ChurnParams(), train, valid)
    linear = logistic().fit(log_matrix(train, numeric), train["churned"])
    ceiling = cross_validated(holdout, numeric, args.folds)
    result = {
        "benchmark": "churn_ceiling",
        "data": "cdnow" if args.data is None else str(args.data),
        "as_of": {
            "train": [f"{d:%Y-%m-%d}" for d in train_dates],
            "validation": f"{valid_date:%Y-%m-%d}",
            "holdout": f"{holdout_date:%Y-%m-%d}",
        },  # fmt: skip
        "holdout_customers": len(holdout),
        "holdout_churn_rate": round(float(y.mean()), 4),
        "recency_only_roc_auc": round(roc_auc_score(y, recency_score(holdout)), 4),
        "trained_on_schedule_roc_auc": {
            "lightgbm_default_parameters": round(roc_auc_score(y, model.probability(holdout)), 4),
            "logistic_log_features": round(
                roc_auc_score(y, linear.predict_proba(log_matrix(holdout, numeric))[:, 1]), 4
            ),
        },
        "lightgbm_rounds": rounds,
        f"ceiling_{args.folds}_fold_cv_on_holdout_labels_roc_auc": {
            k: round(v, 4) for k, v in ceiling.items()
        },
        "target_roc_auc": TARGET,
        "ceiling_reaches_target": max(ceiling.values()) >= TARGET,
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
