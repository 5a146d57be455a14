"""Baseline recommenders on the same split as the two-tower model: popularity, item
co-occurrence and ALS (``implicit``). Each is fitted on a customers x items matrix of training
interactions and scores the whole catalogue for a set of customer rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


class Popularity:
    """Every customer gets the items with the most training interactions."""

    name = "popularity"

    def fit(self, interactions: sp.csr_matrix) -> Popularity:
        self.counts = np.asarray(interactions.sum(axis=0)).ravel()
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(rows), len(self.counts))).astype(np.float32)


class CoOccurrence:
    """Item-to-item: score(c, j) = sum over the customer's items i of cosine(i, j) co-occurrence."""

    name = "cooccurrence"

    def fit(self, interactions: sp.csr_matrix) -> CoOccurrence:
        self.users = (interactions > 0).astype(np.float32).tocsr()
        co = (self.users.T @ self.users).tocsr()  # (items, items) customers who have both
        norm = np.sqrt(np.maximum(co.diagonal(), 1.0))
        co = sp.diags(1.0 / norm) @ co @ sp.diags(1.0 / norm)
        co.setdiag(0.0)
        self.similarity = co.tocsr()
        self.popularity = np.asarray(self.users.sum(axis=0)).ravel()
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        dense = np.asarray((self.users[rows] @ self.similarity).todense(), dtype=np.float32)
        # ties (customers with no history) broken by popularity
        return dense + 1e-6 * self.popularity / max(self.popularity.max(), 1)


@dataclass
class ALS:
    """Alternating least squares for implicit feedback (``implicit.cpu.als``)."""

    factors: int = 64
    regularization: float = 0.05
    alpha: float = 2.0
    iterations: int = 15
    seed: int = 42
    threads: int = 2
    name: str = "als"

    def fit(self, interactions: sp.csr_matrix) -> ALS:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        model = AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.seed,
            num_threads=self.threads,
        )
        with threadpool_limits(1, "blas"):  # implicit parallelises itself; BLAS threads slow it down
            model.fit(interactions.astype(np.float32).tocsr(), show_progress=False)
        self.user_factors = np.asarray(model.user_factors)
        self.item_factors = np.asarray(model.item_factors)
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.user_factors[rows] @ self.item_factors.T

    def params(self) -> dict:
        return {f"als_{k}": getattr(self, k) for k in ("factors", "regularization", "alpha", "iterations")}
