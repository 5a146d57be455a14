"""The two-tower recommender, read top to bottom: config, inputs, towers, model, training task,
retrieval export.

- ``CustomerTower``: customer id embedding (row 0 is the unknown-customer bucket), profile and
  category-mix features, and the mean of the embeddings of the customer's recently bought items,
  through one hidden layer. The history mean is what lets a fresh purchase change the
  recommendations without retraining.
- ``ItemTower``: item id, category, subcategory and price band embeddings, projected; plus a
  per-item bias (popularity the towers need not encode in directions).
- ``TwoTowerTrainTask`` owns the loss: in-batch sampled softmax over the other positives of the
  batch, with the log-q correction (subtract log of each item's sampling probability) so that
  popular items are not over-penalised as negatives.
- ``refine_customers``: after training, each known customer's query is refined to the maximum a
  posteriori vector under a softmax over the items of each category, the item tower frozen and an
  L2 prior around the tower's own output (the customer tower generalises; the refinement reads
  what the customer's own interactions say).
- ``CategoryHead`` / ``CategoryHeadTask``: in which categories a customer buys next (multi-label,
  from profile and category-state features and the categories of the newest purchases). Served
  scores become ``log P(category) + log softmax within the category``: browsing spreads over
  categories by habit, purchases follow the customer's devices (a fresh phone brings accessories,
  an owned TV makes another unlikely), and the towers learn mostly from browsing. On a time
  split the refinement and the head together rank better than the towers alone, and better than
  either of them alone (``two_tower_towers_only`` in the job's figures is the towers alone).
- ``export_bundle`` turns the trained towers into the numpy :class:`serving.bundle.RecommenderBundle`
  the served model uses (static per-customer parts precomputed); serving never imports this file.

Seeded and deterministic on CPU (one seed drives initialisation, shuffling and dropout).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from serving.bundle import RECENT_SLOTS, CategoryIntent, ItemLists, RecommenderBundle


@dataclass
class TwoTowerConfig:
    """Hyperparameters of the two-tower model and its training."""

    dim: int = 64  # output embedding size of both towers
    hidden: int = 128  # customer tower hidden layer
    side_dim: int = 16  # category / subcategory / price-band embedding size
    history_len: int = 50  # recent purchases averaged in the customer tower
    history_dropout: float = 0.3  # share of history items dropped per training example
    unknown_rate: float = 0.05  # share of examples that see the unknown-customer bucket
    temperature: float = 0.3  # the best of a sweep on MovieLens-100k; the synthetic tiny preset is flat in it
    epochs: int = 8
    batch_size: int = 512
    lr: float = 3e-3
    weight_decay: float = 1e-5
    seed: int = 42
    # one thread: the towers are small, and on a busy 2-core machine two OpenMP threads spin and
    # ran several times slower per batch than one in a probe here
    threads: int = 1
    refine_l2: float = 1.0  # prior strength of the per-customer refinement (0: no refinement)
    refine_iterations: int = 30  # L-BFGS iterations per block of customers
    head_hidden: int = 64  # category head hidden layer
    head_epochs: int = 10

    def params(self) -> dict:
        """The fields as MLflow parameters (and bundle metadata), prefixed ``tt_``."""
        return {f"tt_{k}": v for k, v in asdict(self).items()}


@dataclass
class TowerInputs:
    """Training inputs as arrays; customers and items are positions (0-based).

    ``history`` holds each customer's latest purchases as item position + 1, newest first,
    0-padded to ``history_len``; the training examples are (customer, item, weight) rows.
    """

    customer_features: np.ndarray  # (n_customers, n_features) float32, standardised
    item_category: np.ndarray  # (n_items,) int codes
    item_subcategory: np.ndarray  # (n_items,) int codes
    item_price_band: np.ndarray  # (n_items,) int codes (0 = unknown price)
    history: np.ndarray  # (n_customers, history_len) int64
    example_customer: np.ndarray  # (n_examples,) int64
    example_item: np.ndarray  # (n_examples,) int64
    example_weight: np.ndarray  # (n_examples,) float32

    @property
    def n_customers(self) -> int:
        return len(self.customer_features)

    @property
    def n_items(self) -> int:
        return len(self.item_category)


def history_matrix(lists: ItemLists, history_len: int) -> np.ndarray:
    """(rows, history_len) item position + 1 per row, first ``history_len`` items, 0-padded."""
    out = np.zeros((lists.rows, history_len), dtype=np.int64)
    lengths = np.minimum(lists.lengths(), history_len)
    rows = np.repeat(np.arange(lists.rows), lengths)
    cols = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[rows, cols] = lists.indices[np.repeat(lists.indptr[:-1], lengths) + cols] + 1
    return out


# ---------------------------------------------------------------------------------------------
# towers


class CustomerTower(nn.Module):
    """customer row (+1; 0 = unknown), features, history -> unit vector (batch, dim)."""

    def __init__(self, n_customers: int, n_items: int, n_features: int, cfg: TwoTowerConfig) -> None:
        super().__init__()
        self.id_embedding = nn.Embedding(n_customers + 1, cfg.dim)
        self.history_embedding = nn.Embedding(n_items + 1, cfg.dim, padding_idx=0)
        self.n_features = n_features
        self.first = nn.Linear(cfg.dim + n_features + cfg.dim, cfg.hidden)
        self.out = nn.Linear(cfg.hidden, cfg.dim)
        nn.init.normal_(self.id_embedding.weight, std=0.05)
        nn.init.normal_(self.history_embedding.weight, std=0.05)
        with torch.no_grad():
            self.history_embedding.weight[0].zero_()

    def history_mean(self, history: torch.Tensor) -> torch.Tensor:
        """Mean embedding of the non-padding history items: (batch, L) -> (batch, dim)."""
        mask = (history > 0).float().unsqueeze(-1)  # (batch, L, 1)
        summed = (self.history_embedding(history) * mask).sum(1)
        return summed / mask.sum(1).clamp(min=1.0)

    def forward(self, rows: torch.Tensor, features: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.id_embedding(rows), features, self.history_mean(history)], dim=1)
        return F.normalize(self.out(F.relu(self.first(x))), dim=1)  # (batch, dim)


class ItemTower(nn.Module):
    """item position -> (unit vector (batch, dim), bias (batch,))."""

    def __init__(self, inputs: TowerInputs, cfg: TwoTowerConfig) -> None:
        super().__init__()
        self.register_buffer("category", torch.as_tensor(inputs.item_category, dtype=torch.long))
        self.register_buffer("subcategory", torch.as_tensor(inputs.item_subcategory, dtype=torch.long))
        self.register_buffer("price_band", torch.as_tensor(inputs.item_price_band, dtype=torch.long))
        self.id_embedding = nn.Embedding(inputs.n_items, cfg.dim)
        self.category_embedding = nn.Embedding(int(inputs.item_category.max()) + 1, cfg.side_dim)
        self.subcategory_embedding = nn.Embedding(int(inputs.item_subcategory.max()) + 1, cfg.side_dim)
        self.price_embedding = nn.Embedding(int(inputs.item_price_band.max()) + 1, cfg.side_dim)
        self.project = nn.Linear(cfg.dim + 3 * cfg.side_dim, cfg.dim)
        self.bias = nn.Embedding(inputs.n_items, 1)
        nn.init.normal_(self.id_embedding.weight, std=0.05)
        nn.init.zeros_(self.bias.weight)

    def forward(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat(
            [
                self.id_embedding(items),
                self.category_embedding(self.category[items]),
                self.subcategory_embedding(self.subcategory[items]),
                self.price_embedding(self.price_band[items]),
            ],
            dim=1,
        )
        return F.normalize(self.project(x), dim=1), self.bias(items).squeeze(1)


class TwoTower(nn.Module):
    """The two towers; returns embeddings, owns no loss."""

    def __init__(self, inputs: TowerInputs, cfg: TwoTowerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n_features = inputs.customer_features.shape[1]
        self.customer = CustomerTower(inputs.n_customers, inputs.n_items, n_features, cfg)
        self.item = ItemTower(inputs, cfg)

    def forward(
        self, rows: torch.Tensor, features: torch.Tensor, history: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        u = self.customer(rows, features, history)
        v, bias = self.item(items)
        return u, v, bias


# ---------------------------------------------------------------------------------------------
# training task


class Workers:
    """The processes that train one model together: by default this process alone.

    Several (training/ddp.py) share each global batch of the one seeded permutation: a worker
    trains on its slice, :meth:`wrap` makes the model average the gradients across workers and
    :meth:`sum` adds up their epoch totals.
    """

    rank: int = 0
    world: int = 1

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module a worker calls forward on (one process: the model itself)."""
        return model

    def sum(self, values: list[float]) -> list[float]:
        """``values`` summed over the workers (one process: as they are)."""
        return values


ONE_PROCESS = Workers()


class TwoTowerTrainTask:
    """In-batch sampled softmax with log-q correction over a :class:`TwoTower`."""

    def __init__(self, inputs: TowerInputs, cfg: TwoTowerConfig) -> None:
        torch.manual_seed(cfg.seed)
        self.inputs, self.cfg = inputs, cfg
        self.model = TwoTower(inputs, cfg)
        # sampling probability of each item as an in-batch negative = its share of examples
        counts = np.bincount(inputs.example_item, weights=None, minlength=inputs.n_items) + 1e-3
        self.log_q = torch.as_tensor(np.log(counts / counts.sum()), dtype=torch.float32)
        self.features = torch.tensor(
            inputs.customer_features, dtype=torch.float32
        )  # a copy: pandas arrays may be read-only
        self.history = torch.tensor(inputs.history, dtype=torch.long)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def batch_loss(
        self,
        customers: torch.Tensor,
        items: torch.Tensor,
        weights: torch.Tensor,
        model: nn.Module | None = None,
    ) -> torch.Tensor:
        """Weighted in-batch softmax loss of one batch of (customer, item) positives.

        ``model`` is the module to call (the towers, or a wrapper of them; default the towers)."""
        cfg = self.cfg
        history = self.history[customers]  # (B, L)
        # the target must not be in its own history; drop some history items as regularisation
        drop = torch.rand(history.shape, generator=self.generator) < cfg.history_dropout
        history = torch.where((history == items.unsqueeze(1) + 1) | drop, 0, history)
        rows = customers + 1
        unknown = torch.rand(rows.shape, generator=self.generator) < cfg.unknown_rate
        rows = torch.where(unknown, 0, rows)
        features = self.features[customers] * (~unknown).float().unsqueeze(1)  # unknown: no profile
        u, v, bias = (self.model if model is None else model)(rows, features, history, items)
        logits = u @ v.T / cfg.temperature + bias - self.log_q[items]  # (B, B)
        same_item = items.unsqueeze(0) == items.unsqueeze(1)
        logits = logits.masked_fill(same_item & ~torch.eye(len(items), dtype=torch.bool), float("-inf"))
        loss = F.cross_entropy(logits, torch.arange(len(items)), reduction="none")
        return (loss * weights).sum() / weights.sum()

    def fit(
        self, on_epoch: Callable[[int, float], None] | None = None, workers: Workers = ONE_PROCESS
    ) -> list[float]:
        """Train for ``cfg.epochs``; returns the mean training loss of each epoch (over all workers)."""
        torch.set_num_threads(self.cfg.threads)
        inputs = self.inputs
        customers = torch.as_tensor(inputs.example_customer, dtype=torch.long)
        items = torch.as_tensor(inputs.example_item, dtype=torch.long)
        weights = torch.as_tensor(inputs.example_weight, dtype=torch.float32)
        # every worker must walk the same permutation, and the dropout draws of different slices
        # would move a shared generator apart: several workers draw the order from their own
        order = self.generator if workers.world == 1 else torch.Generator().manual_seed(self.cfg.seed)
        model = workers.wrap(self.model)
        losses = []
        model.train()
        for epoch in range(self.cfg.epochs):
            total, seen = workers.sum(self._epoch(customers, items, weights, order, model, workers))
            losses.append(total / max(seen, 1))
            if on_epoch:
                on_epoch(epoch, losses[-1])
        self.model.eval()
        return losses

    def _epoch(
        self, customers: torch.Tensor, items: torch.Tensor, weights: torch.Tensor,
        order: torch.Generator, model: nn.Module, workers: Workers,
    ) -> list[float]:  # fmt: skip
        """One pass over the examples in a fresh permutation; returns [summed loss, examples] of
        this worker's slices."""
        permutation = torch.randperm(len(items), generator=order)
        total, seen = 0.0, 0.0
        for start in range(0, len(permutation), self.cfg.batch_size):
            batch = permutation[start : start + self.cfg.batch_size]
            if len(batch) < 2 * workers.world:
                continue  # every worker needs two examples, and all of them step together
            idx = batch[workers.rank :: workers.world]
            loss = self.batch_loss(customers[idx], items[idx], weights[idx], model)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
        return [total, seen]


# ---------------------------------------------------------------------------------------------
# refinement: each customer's own evidence, the item tower frozen


@torch.no_grad()
def customer_queries(task: TwoTowerTrainTask) -> torch.Tensor:
    """The trained customer tower's unit vectors for every known customer: (n_customers, dim)."""
    model = task.model.eval()
    rows = torch.arange(task.inputs.n_customers)
    return model.customer(rows + 1, task.features, task.history)


def refine_customers(
    task: TwoTowerTrainTask, chosen: sp.csr_matrix, item_category: np.ndarray, l2: float | None = None,
    block: int = 4096,
) -> np.ndarray:  # fmt: skip
    """Per-customer offsets ``e`` to add to the tower's query ``u``: (n_customers, dim).

    ``u + e`` maximises ``sum over chosen items of log softmax(logits of the item's category)``
    ``- refine_l2 * |e|^2``, where ``logits = (u + e) . v / T + bias`` with the item tower frozen
    and ``chosen`` is the (customers, items) matrix of training interactions (nonzero = chosen).
    The softmax of a category is the same for every item the customer chose in it, so the
    objective needs one logsumexp per (customer, category): ``sum_k n_k * lse_k - (u + e) .
    (sum of chosen item vectors)``. Customers are independent; L-BFGS solves blocks at once.
    ``item_category`` holds codes 0..C-1; ``l2`` defaults to ``cfg.refine_l2``.
    """
    cfg = task.cfg
    l2 = cfg.refine_l2 if l2 is None else l2
    torch.set_num_threads(cfg.threads)
    with torch.no_grad():
        v, bias = task.model.item(torch.arange(task.inputs.n_items))
    items = torch.cat([v / cfg.temperature, bias.unsqueeze(1)], dim=1)  # (n_items, dim + 1)
    order = np.argsort(item_category, kind="stable")  # items grouped by category
    bounds = np.searchsorted(item_category[order], np.arange(item_category.max() + 2))
    segments = [(int(a), int(z)) for a, z in zip(bounds[:-1], bounds[1:], strict=True) if z > a]
    chosen = (chosen > 0).astype(np.float32).tocsr()
    n_items = len(item_category)
    in_category = sp.csr_matrix((np.ones(n_items, np.float32), (np.arange(n_items), item_category)))
    per_category = np.asarray((chosen @ in_category).todense())  # (n, C) chosen items per category
    per_category = per_category[:, [int(item_category[order][a]) for a, _ in segments]]
    chosen_sum = chosen @ items.numpy()  # (n, dim + 1)
    queries = customer_queries(task)
    offsets = np.zeros(queries.shape, dtype=np.float32)
    for lo in range(0, chosen.shape[0], block):
        hi = min(lo + block, chosen.shape[0])
        offsets[lo:hi] = _refine_block(
            queries[lo:hi], torch.as_tensor(per_category[lo:hi]), torch.as_tensor(chosen_sum[lo:hi]),
            items[torch.as_tensor(order)], segments, l2, cfg.refine_iterations,
        )  # fmt: skip
    return offsets


def _refine_block(
    u: torch.Tensor, counts: torch.Tensor, chosen_sum: torch.Tensor, items: torch.Tensor,
    segments: list[tuple[int, int]], l2: float, iterations: int,
) -> np.ndarray:  # fmt: skip
    """L-BFGS for one block of customers: u (b, dim), counts (b, C), chosen_sum (b, dim + 1),
    items (n_items, dim + 1) grouped by category as ``segments``."""
    e = torch.zeros_like(u, requires_grad=True)
    optimizer = torch.optim.LBFGS([e], max_iter=iterations, history_size=10, line_search_fn="strong_wolfe")
    ones = torch.ones(len(u), 1)

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        q = torch.cat([u + e, ones], dim=1)  # (b, dim + 1)
        logits = q @ items.T  # (b, n_items)
        lse = torch.stack([torch.logsumexp(logits[:, a:z], dim=1) for a, z in segments], dim=1)
        loss = (counts * lse).sum() - (q * chosen_sum).sum() + l2 * (e**2).sum()
        loss.backward()
        return loss

    optimizer.step(objective)
    return e.detach().numpy()


# ---------------------------------------------------------------------------------------------
# category head: in which categories a customer buys next


@dataclass
class HeadInputs:
    """Rows of (customer state at an as-of date) -> categories bought in the following window.

    ``recent`` holds category codes of the customer's newest purchases before the as-of date
    (newest first, -1 pads; serving reads the same from the recent-items list).
    """

    features: np.ndarray  # (n_rows, n_features) float32, standardised
    recent: np.ndarray  # (n_rows, RECENT_SLOTS) int64
    bought: np.ndarray  # (n_rows, n_categories) float32 0/1
    categories: np.ndarray  # (n_categories,) str


class CategoryHead(nn.Module):
    """(features, newest purchase categories) -> logits of buying in each category (batch, C)."""

    def __init__(self, n_features: int, n_categories: int, hidden: int) -> None:
        super().__init__()
        self.n_features, self.n_categories = n_features, n_categories
        self.first = nn.Linear(n_features + RECENT_SLOTS * n_categories, hidden)
        self.out = nn.Linear(hidden, n_categories)

    def onehot(self, recent: torch.Tensor) -> torch.Tensor:
        """(batch, RECENT_SLOTS) codes, -1 pads -> (batch, RECENT_SLOTS * C) one-hots."""
        slots = F.one_hot(recent.clamp(min=0), self.n_categories) * (recent >= 0).unsqueeze(-1)
        return slots.flatten(1).float()

    def forward(self, features: torch.Tensor, recent: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.first(torch.cat([features, self.onehot(recent)], dim=1))))


class CategoryHeadTask:
    """Binary cross-entropy per category over :class:`HeadInputs` rows."""

    def __init__(self, inputs: HeadInputs, cfg: TwoTowerConfig) -> None:
        torch.manual_seed(cfg.seed)
        self.inputs, self.cfg = inputs, cfg
        self.model = CategoryHead(inputs.features.shape[1], len(inputs.categories), cfg.head_hidden)
        self.generator = torch.Generator().manual_seed(cfg.seed)

    def fit(self) -> list[float]:
        """Train for ``cfg.head_epochs``; returns the mean loss of each epoch."""
        torch.set_num_threads(self.cfg.threads)
        x = torch.tensor(self.inputs.features, dtype=torch.float32)  # a copy: may be read-only
        recent = torch.as_tensor(self.inputs.recent, dtype=torch.long)
        y = torch.as_tensor(self.inputs.bought, dtype=torch.float32)
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=3e-3, weight_decay=1e-4)
        losses = []
        self.model.train()
        for _ in range(self.cfg.head_epochs):
            order = torch.randperm(len(y), generator=self.generator)
            total = 0.0
            for start in range(0, len(order), self.cfg.batch_size):
                idx = order[start : start + self.cfg.batch_size]
                loss = F.binary_cross_entropy_with_logits(self.model(x[idx], recent[idx]), y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(idx)
            losses.append(total / max(len(order), 1))
        self.model.eval()
        return losses

    @torch.no_grad()
    def export(self, customer_features: np.ndarray) -> CategoryIntent:
        """The numpy head for serving, static part per customer (row 0: unknown, mean features)."""
        head = self.model
        w_first = head.first.weight.T  # (n_features + RECENT_SLOTS * C, hidden)
        features = torch.cat([torch.zeros(1, head.n_features), torch.tensor(customer_features)])
        static = features @ w_first[: head.n_features] + head.first.bias
        return CategoryIntent(
            categories=np.asarray(self.inputs.categories, dtype=object),
            static=static.numpy().astype(np.float32),
            w_recent=w_first[head.n_features :].numpy().astype(np.float32),
            w_out=head.out.weight.T.numpy().astype(np.float32),
            b_out=head.out.bias.numpy().astype(np.float32),
        )


# ---------------------------------------------------------------------------------------------
# retrieval: export the towers for serving


@torch.no_grad()
def export_bundle(
    task: TwoTowerTrainTask,
    customer_ids: np.ndarray,
    item_ids: np.ndarray,
    item_category: np.ndarray,
    item_active: np.ndarray,
    owned: ItemLists,
    recent: ItemLists,
    popularity: np.ndarray,
    meta: dict | None = None,
    customer_offset: np.ndarray | None = None,
    intent: CategoryIntent | None = None,
) -> RecommenderBundle:
    """The numpy form of the trained towers: item vectors with bias, per-customer static parts.

    ``customer_offset`` (n_customers, dim) from :func:`refine_customers`; with ``intent`` the item
    vectors get a one-hot of their category in the intent's order (see serving.bundle)."""
    tower = task.model.customer
    static, w_history = _customer_static(task)
    if customer_offset is not None:
        customer_offset = np.vstack([np.zeros((1, task.cfg.dim), np.float32), customer_offset])
    return RecommenderBundle(
        item_ids=np.asarray(item_ids, dtype=object),
        item_category=np.asarray(item_category, dtype=object),
        item_active=np.asarray(item_active, dtype=bool),
        item_vectors=_item_vectors(task, item_category, intent),
        popularity=np.asarray(popularity, dtype=np.float64),
        customer_ids=np.asarray(customer_ids, dtype=object),
        customer_static=static,
        history_table=tower.history_embedding.weight.numpy().astype(np.float32),
        w_history=w_history,
        w_out=tower.out.weight.T.numpy().astype(np.float32),
        b_out=tower.out.bias.numpy().astype(np.float32),
        owned=owned,
        recent=recent,
        meta=meta or {},
        customer_offset=customer_offset,
        intent=intent,
    )


@torch.no_grad()
def _customer_static(task: TwoTowerTrainTask) -> tuple[np.ndarray, np.ndarray]:
    """The customer tower's first layer split: the static part per customer (id embedding and
    features through it; row 0 the unknown bucket with mean features) and the history weights."""
    tower, dim = task.model.customer, task.cfg.dim
    n_features = tower.n_features
    w_first = tower.first.weight.T  # (dim + n_features + dim, hidden)
    w_id, w_features, w_history = w_first[:dim], w_first[dim : dim + n_features], w_first[dim + n_features :]
    features = torch.cat([torch.zeros(1, n_features), task.features])
    static = tower.id_embedding.weight @ w_id + features @ w_features + tower.first.bias
    return static.numpy().astype(np.float32), w_history.numpy().astype(np.float32)


@torch.no_grad()
def _item_vectors(
    task: TwoTowerTrainTask, item_category: np.ndarray, intent: CategoryIntent | None
) -> np.ndarray:
    """Item vectors over the temperature with the bias as a last column, and with ``intent`` a
    one-hot of the item's category in the intent's order."""
    v, bias = task.model.item(torch.arange(task.inputs.n_items))
    item_vectors = torch.cat([v / task.cfg.temperature, bias.unsqueeze(1)], dim=1).numpy()
    if intent is not None:
        codes = pd.Index(intent.categories).get_indexer(np.asarray(item_category, dtype=object))
        item_vectors = np.hstack([item_vectors, np.eye(len(intent.categories), dtype=np.float32)[codes]])
    return item_vectors.astype(np.float32)
