"""LightGBM settings shared by the tree models (churn, value): one place for what every booster of
the project sets, so the models differ only where their parameters say so."""

from __future__ import annotations

from typing import Any


def booster_params(params: Any, objective: str, monotone: list[int]) -> dict:
    """LightGBM's parameters from a model's hyperparameter dataclass (learning rate, leaves,
    sampling, L2, seed, threads) for ``objective`` with one monotone constraint per feature."""
    return {
        "objective": objective,
        "learning_rate": params.learning_rate,
        "num_leaves": params.num_leaves,
        "min_child_samples": params.min_child_samples,
        "feature_fraction": params.feature_fraction,
        "bagging_fraction": params.bagging_fraction,
        "bagging_freq": 1,
        "lambda_l2": params.lambda_l2,
        "monotone_constraints": monotone,
        # "advanced" broke the monotone guarantee on the tiny preset in a probe; "intermediate" keeps it
        "monotone_constraints_method": "intermediate",
        "seed": params.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": params.num_threads,
        "verbosity": -1,
    }
