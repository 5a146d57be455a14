"""The two-tower model: training behaviour, determinism, and the numpy export used by serving."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from features.contract import open_validated
from serving.bundle import RECENT_SLOTS, ItemLists
from serving.retrieval import Retrieval
from training import recommender, recommender_data
from training.two_tower import (
    CategoryHeadTask,
    HeadInputs,
    TowerInputs,
    TwoTowerConfig,
    TwoTowerTrainTask,
    customer_queries,
    export_bundle,
    history_matrix,
    refine_customers,
)


@pytest.fixture(scope="module")
def tiny_inputs(tiny_data):
    cfg = recommender.RecommenderTrainConfig(data=tiny_data)
    con = open_validated(tiny_data)
    prep = recommender_data.prepare(con, recommender.load_split(con, cfg))
    inputs, _ = recommender_data.tower_inputs(con, prep, TwoTowerConfig(history_len=20))
    return prep, inputs


def small_config(**kw) -> TwoTowerConfig:
    return TwoTowerConfig(dim=16, hidden=32, history_len=20, batch_size=256, **kw)


def test_history_matrix_takes_the_first_items_shifted_and_padded() -> None:
    lists = ItemLists.from_lists([[4, 0, 7], [], [2]])
    assert history_matrix(lists, 2).tolist() == [[5, 1], [0, 0], [3, 0]]


def test_loss_falls_within_two_epochs_on_tiny(tiny_inputs) -> None:
    _, inputs = tiny_inputs
    losses = TwoTowerTrainTask(inputs, small_config(epochs=2)).fit()
    assert len(losses) == 2 and losses[1] < losses[0]


def test_training_is_deterministic_for_a_seed(tiny_inputs) -> None:
    _, inputs = tiny_inputs
    sub = TowerInputs(
        **{**inputs.__dict__, **{k: v[:3000] for k, v in inputs.__dict__.items() if k.startswith("example")}}
    )
    a, b = TwoTowerTrainTask(sub, small_config(epochs=1)), TwoTowerTrainTask(sub, small_config(epochs=1))
    assert a.fit() == b.fit()
    for (name, pa), (_, pb) in zip(a.model.named_parameters(), b.model.named_parameters(), strict=True):
        assert torch.equal(pa, pb), name
    c = TwoTowerTrainTask(sub, small_config(epochs=1, seed=7))
    assert c.fit() != a.fit()


def test_numpy_export_reproduces_the_torch_towers(tiny_inputs) -> None:
    prep, inputs = tiny_inputs
    task = TwoTowerTrainTask(inputs, small_config(epochs=1))
    task.fit()
    recent = ItemLists.from_lists([prep.recent.row(r)[:20] for r in range(prep.recent.rows)])
    bundle = export_bundle(
        task, prep.customer_ids, prep.item_ids, prep.items["category"].to_numpy(),
        prep.items["active"].to_numpy(), prep.owned, recent, np.ones(len(prep.item_ids)),
    )  # fmt: skip
    served = Retrieval(bundle)
    rows = np.arange(0, len(prep.customer_ids), 97)
    with torch.no_grad():
        r = torch.as_tensor(rows)
        u = task.model.customer(r + 1, task.features[r], task.history[r])
        v, bias = task.model.item(torch.arange(inputs.n_items))
        logits = u @ v.T / task.cfg.temperature + bias
    queries = served.customer_vectors(rows, recent.take(rows))
    assert np.allclose(queries[:, :-1], u.numpy(), atol=1e-5)
    assert np.allclose(queries @ bundle.item_vectors.T, logits.numpy(), atol=1e-3)
    # the unknown bucket: row 0, no profile
    unknown = served.customer_vectors(np.array([-1]), ItemLists.empty(1))
    with torch.no_grad():
        u0 = task.model.customer(
            torch.tensor([0]),
            torch.zeros(1, inputs.customer_features.shape[1]),
            torch.zeros(1, 20, dtype=torch.long),
        )
    assert np.allclose(unknown[:, :-1], u0.numpy(), atol=1e-5)


@pytest.fixture(scope="module")
def refined(tiny_inputs):
    """A briefly trained task and its per-customer refinement."""
    prep, inputs = tiny_inputs
    task = TwoTowerTrainTask(inputs, small_config(epochs=1))
    task.fit()
    return task, refine_customers(task, prep.matrix, inputs.item_category)


def within_category_log_likelihood(task, offsets, prep, inputs) -> np.ndarray:
    """Per customer: sum over their training items of log softmax(logits of the item's category)."""
    with torch.no_grad():
        u = customer_queries(task).numpy() + offsets
        v, bias = task.model.item(torch.arange(inputs.n_items))
        logits = u @ (v.numpy() / task.cfg.temperature).T + bias.numpy()
    log_p = np.empty_like(logits)
    for c in np.unique(inputs.item_category):
        cols = inputs.item_category == c
        log_p[:, cols] = logits[:, cols] - np.logaddexp.reduce(logits[:, cols], axis=1, keepdims=True)
    chosen = (prep.matrix > 0).astype(np.float64)
    return np.asarray(chosen.multiply(log_p).sum(axis=1)).ravel()


def test_refinement_makes_each_customers_own_items_more_likely(refined, tiny_inputs) -> None:
    prep, inputs = tiny_inputs
    task, offsets = refined
    assert offsets.shape == (inputs.n_customers, task.cfg.dim)
    before = within_category_log_likelihood(task, np.zeros_like(offsets), prep, inputs)
    after = within_category_log_likelihood(task, offsets, prep, inputs)
    assert np.all(after >= before - 1e-3)
    assert (after > before + 1e-3).mean() > 0.9
    # a stronger prior keeps the queries closer to the tower's
    stiff = refine_customers(task, prep.matrix, inputs.item_category, l2=10 * task.cfg.refine_l2)
    assert np.linalg.norm(stiff, axis=1).mean() < np.linalg.norm(offsets, axis=1).mean()


def test_served_scores_are_category_probability_plus_within_category_log_softmax(
    refined, tiny_inputs
) -> None:
    prep, inputs = tiny_inputs
    task, offsets = refined
    categories = np.sort(prep.items["category"].unique()).astype(object)
    codes = pd.Index(categories).get_indexer(prep.items["category"])
    rng = np.random.default_rng(0)
    head = HeadInputs(
        features=rng.standard_normal((200, 5)).astype(np.float32),
        recent=rng.integers(-1, len(categories), (200, RECENT_SLOTS)),
        bought=(rng.random((200, len(categories))) < 0.2).astype(np.float32),
        categories=categories,
    )
    head_task = CategoryHeadTask(head, small_config(head_epochs=2))
    head_task.fit()
    features = rng.standard_normal((inputs.n_customers, 5)).astype(np.float32)
    recent = ItemLists.from_lists([prep.recent.row(r)[:20] for r in range(prep.recent.rows)])
    bundle = export_bundle(
        task, prep.customer_ids, prep.item_ids, prep.items["category"].to_numpy(),
        prep.items["active"].to_numpy(), prep.owned, recent, np.ones(len(prep.item_ids)),
        customer_offset=offsets, intent=head_task.export(features),
    )  # fmt: skip
    rows = np.arange(0, len(prep.customer_ids), 53)
    scores = Retrieval(bundle).customer_vectors(rows, recent.take(rows)) @ bundle.item_vectors.T
    # the same score from the torch modules
    with torch.no_grad():
        r = torch.as_tensor(rows)
        u = task.model.customer(r + 1, task.features[r], task.history[r]) + torch.as_tensor(offsets[rows])
        v, bias = task.model.item(torch.arange(inputs.n_items))
        logits = (u @ v.T / task.cfg.temperature + bias).numpy()
        newest = np.full((len(rows), RECENT_SLOTS), -1)
        for i, row in enumerate(rows):
            first = prep.recent.row(row)[:RECENT_SLOTS]
            newest[i, : len(first)] = codes[first]
        log_p = F.logsigmoid(
            head_task.model(torch.as_tensor(features[rows]), torch.as_tensor(newest))
        ).numpy()
    expected = np.empty_like(logits)
    for c in range(len(categories)):
        cols = codes == c
        expected[:, cols] = logits[:, cols] - np.logaddexp.reduce(logits[:, cols], axis=1, keepdims=True)
        expected[:, cols] += log_p[:, [c]]
    assert np.allclose(scores, expected, atol=1e-3)
