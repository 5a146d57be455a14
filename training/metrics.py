"""Model metrics: churn classification (this section) and recommender ranking (below)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

# ---------------------------------------------------------------------------------------------
# churn: binary classification


def top_decile(y_true: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """(lift, capture) of the 10% highest scores: churn rate there over the base rate, and the
    share of all churners found there."""
    y_true = np.asarray(y_true, dtype=float)
    n_top = max(1, int(np.ceil(0.1 * len(y_true))))
    top = np.argsort(-np.asarray(score), kind="stable")[:n_top]
    base = y_true.mean()
    if base == 0:
        return 0.0, 0.0
    return float(y_true[top].mean() / base), float(y_true[top].sum() / y_true.sum())


def classification_metrics(y_true: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC, log loss, Brier score, lift and capture in the top decile, base rate."""
    y_true = np.asarray(y_true, dtype=int)
    p = np.clip(np.asarray(probability, dtype=float), 1e-6, 1 - 1e-6)
    lift, capture = top_decile(y_true, p)
    return {
        "roc_auc": float(roc_auc_score(y_true, p)),
        "pr_auc": float(average_precision_score(y_true, p)),
        "log_loss": float(log_loss(y_true, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y_true, p)),
        "lift_top_decile": lift,
        "capture_top_decile": capture,
        "base_rate": float(y_true.mean()),
        "n": int(len(y_true)),
    }


# ---------------------------------------------------------------------------------------------
# recommender: ranking
