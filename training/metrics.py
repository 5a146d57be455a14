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

RANKING_KS = (5, 10, 20)


def top_k(scores: np.ndarray, excluded: list[np.ndarray], k: int) -> np.ndarray:
    """(n, k) item positions of the highest scores per row, each row's ``excluded`` items skipped."""
    scores = np.array(scores, dtype=np.float32, copy=True)
    rows = np.repeat(np.arange(len(excluded)), [len(e) for e in excluded])
    if len(rows):
        scores[rows, np.concatenate(excluded).astype(np.int64)] = -np.inf
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def ranking_metrics(
    top_items: np.ndarray, relevant: list[np.ndarray], n_items: int, ks: tuple[int, ...] = RANKING_KS
) -> dict[str, float]:
    """Recall@K, NDCG@K (binary relevance), HitRate@K and catalogue coverage@K, averaged over rows.

    ``top_items`` (n, max K) ranks best first; ``relevant`` holds each row's held-out items.
    Recall divides the hits by all of a row's relevant items; NDCG's ideal ranks min(K, relevant)
    hits first; coverage is the share of the catalogue recommended to at least one row.
    """
    n = len(relevant)
    hits = np.zeros(top_items.shape, dtype=bool)
    for r, items in enumerate(relevant):
        hits[r] = np.isin(top_items[r], items)
    n_relevant = np.array([len(x) for x in relevant], dtype=float)
    discount = 1.0 / np.log2(np.arange(2, top_items.shape[1] + 2))
    out: dict[str, float] = {}
    for k in ks:
        h = hits[:, :k]
        dcg = (h * discount[:k]).sum(1)
        ideal = np.array([discount[: int(min(k, m))].sum() for m in n_relevant])
        out[f"recall_at_{k}"] = float(np.mean(h.sum(1) / np.maximum(n_relevant, 1))) if n else 0.0
        out[f"ndcg_at_{k}"] = float(np.mean(dcg / np.maximum(ideal, 1e-12))) if n else 0.0
        out[f"hit_rate_at_{k}"] = float(np.mean(h.any(1))) if n else 0.0
        recommended = np.unique(top_items[:, :k])
        out[f"coverage_at_{k}"] = float(len(recommended[recommended >= 0]) / max(n_items, 1))
    return out
