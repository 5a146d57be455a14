"""The two-tower model: training behaviour, determinism, and the numpy export used by serving."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from features.contract import open_validated
from serving.retrieval import ItemLists, Retrieval
from training import recommender
from training.two_tower import TowerInputs, TwoTowerConfig, TwoTowerTrainTask, export_bundle, history_matrix


@pytest.fixture(scope="module")
def tiny_inputs(tiny_data):
    cfg = recommender.RecommenderTrainConfig(data=tiny_data)
    con = open_validated(tiny_data)
    prep = recommender.prepare(con, recommender.load_split(con, cfg))
    inputs, _ = recommender.tower_inputs(con, prep, TwoTowerConfig(history_len=20))
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
