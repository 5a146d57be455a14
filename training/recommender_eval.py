"""The recommender's holdout evaluation and its figures.

Every model ranks the whole catalogue for each test customer with that customer's training items
excluded; Recall/NDCG/HitRate@K and coverage for K in 5, 10, 20. The two-tower model is evaluated
through its served form (numpy towers + FAISS + business filters), so the figures are those of the
model that gets registered. On simulated data the oracle (true tastes) gives the ceiling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from serving.filters import BusinessFilters
from serving.retrieval import Retrieval
from training.metrics import RANKING_KS, ranking_metrics, top_k
from training.recommender_data import Prepared

HEADLINE_K = 10
HEADLINE_FIGURES = ("recall", "ndcg", "hit_rate", "coverage")
# The one figure the summaries headline and the promotion gate compares.
HEADLINE_METRIC = f"recall_at_{HEADLINE_K}"


def evaluate_scores(
    score_fn, prep: Prepared, ks: tuple[int, ...] = RANKING_KS, chunk: int = 4096
) -> dict[str, float]:
    """Rank the whole catalogue with ``score_fn(rows) -> (n, n_items)``, training items excluded."""
    tops = []
    for start in range(0, len(prep.test_rows), chunk):
        rows = prep.test_rows[start : start + chunk]
        scores = score_fn(np.maximum(rows, 0))
        scores = np.where((rows >= 0)[:, None], scores, scores.mean(0, keepdims=True))  # unknown: average
        excluded = [prep.owned.row(r) if r >= 0 else np.zeros(0, np.int64) for r in rows]
        tops.append(top_k(scores, excluded, max(ks)))
    return ranking_metrics(np.vstack(tops), prep.relevant, len(prep.item_ids), ks)


def evaluate_retrieval(
    retrieval: Retrieval, prep: Prepared, ks: tuple[int, ...] = RANKING_KS
) -> dict[str, float]:
    """Rank through the served path (FAISS + filters; inactive items allowed, as for baselines).

    Works for any bundle (the champion's too): customers and items are matched by id.
    """
    ids = prep.item_ids
    rows = prep.test_rows
    n_recent = int(retrieval.bundle.meta.get("config", {}).get("tt_history_len", 50))
    recent = [ids[prep.recent.row(r)[:n_recent]] if r >= 0 else () for r in rows]
    owned = [ids[prep.owned.row(r)] if r >= 0 else () for r in rows]
    filters = BusinessFilters(exclude_owned=True, only_active=False)
    recs = retrieval.recommend_arrays(prep.test_customers, max(ks), filters, recent, owned)
    served_ids = retrieval.bundle.item_ids
    top_ids = np.where(recs.items >= 0, served_ids[np.maximum(recs.items, 0)], None)
    top = pd.Index(ids).get_indexer(top_ids.reshape(-1)).reshape(top_ids.shape)
    return ranking_metrics(top, prep.relevant, len(ids), ks)


def oracle_metrics(data: Path, prep: Prepared, ks: tuple[int, ...] = RANKING_KS) -> dict[str, float] | None:
    """The simulator's true-taste ranking on the same test customers (None without truth/)."""
    if not (Path(data) / "truth").is_dir():
        return None
    from features.synth import oracle_recommendations

    ids = prep.item_ids
    exclude = {
        c: set(ids[prep.owned.row(r)]) if r >= 0 else set()
        for c, r in zip(prep.test_customers, prep.test_rows, strict=True)
    }
    recs = oracle_recommendations(data, list(prep.test_customers), max(ks), exclude)
    index = pd.Index(ids)
    top = np.full((len(prep.test_customers), max(ks)), -1, dtype=np.int64)
    for i, c in enumerate(prep.test_customers):
        found = index.get_indexer(recs.get(c, []))
        top[i, : len(found)] = found
    return ranking_metrics(top, prep.relevant, len(ids), ks)


# ---------------------------------------------------------------------------------------------
# figures


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def comparison_plot(metrics: dict[str, dict[str, float]], k: int = HEADLINE_K):
    """Bars of Recall, NDCG, HitRate and coverage @k for each model, side by side."""
    models = list(metrics)
    fig, ax = _pyplot().subplots(figsize=(8, 4))
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        values = [metrics[model].get(f"{n}_at_{k}", 0.0) for n in HEADLINE_FIGURES]
        ax.bar(np.arange(len(HEADLINE_FIGURES)) + i * width, values, width, label=model)
    ax.set_xticks(np.arange(len(HEADLINE_FIGURES)) + width * (len(models) - 1) / 2)
    ax.set_xticklabels([f"{n}@{k}" for n in HEADLINE_FIGURES])
    ax.legend()
    ax.set_title("holdout ranking metrics, whole catalogue, owned items excluded")
    fig.tight_layout()
    return fig


def loss_plot(losses: list[float]):
    """The two-tower training loss per epoch."""
    fig, ax = _pyplot().subplots(figsize=(5, 3))
    ax.plot(np.arange(1, len(losses) + 1), losses, marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("in-batch softmax loss")
    ax.set_title("two-tower training")
    fig.tight_layout()
    return fig
