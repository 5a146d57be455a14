"""How far a recommender can go on the synthetic time split: the demo bar (two-tower Recall@10 at
least 1.2x the best baseline) against a model that knows the items exactly. JSON on stdout.

    python bench/recommender_ceiling.py [--data DIR] [--iterations 60] [--metrics-json PATH]

``--data`` is a folder written by the simulator (``crm data synth``, or ``out/demo/data`` after
``make demo``), with its ``truth/``; without it the demo preset (seed 42, as ``make demo``) is
simulated into a temporary folder. On the split ``crm train recommender`` uses by default, and
with its evaluation (the whole catalogue ranked, owned items excluded), it scores:

- ``true_tastes``: the customers' true tastes, the simulator's item vectors and popularity, and
  the base category shares (the scorer of ``features.synth.oracle_recommendations``; customers
  first seen after the split get the mean scores here, as every model does, so this is a little
  below the oracle ``crm train recommender`` reports);
- ``known_items``: the same scorer with each customer's taste *estimated* from their training
  interactions, by maximum a posteriori under the simulator's own choice model (a softmax over
  the items of the chosen category, the true item vectors, the true prior of the tastes). A model
  learned from the data has to estimate the items as well, so this is more than it can expect.

``--metrics-json`` (written by ``crm train recommender``) puts the trained models' figures beside
these, with the share of the ``known_items`` ceiling the two-tower reaches and the 1.2x target.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from features.contract import open_validated  # noqa: E402
from features.synth import (  # noqa: E402
    CATEGORIES,
    CHOICE_TEMPERATURE,
    TASTE_DIM,
    TASTE_SCALE,
    SynthConfig,
    _read_truth,
    true_items,
)
from features.synth import run as synth  # noqa: E402
from training.recommender import RecommenderTrainConfig, load_split  # noqa: E402
from training.recommender_data import Prepared, prepare  # noqa: E402
from training.recommender_eval import evaluate_scores  # noqa: E402

BASELINES = ("popularity", "cooccurrence", "als")


def item_truth(data: Path, prep: Prepared) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    """Item vectors, popularity, oracle bias and category codes, in ``prep``'s item order."""
    truth = true_items(data).set_index("item_id").reindex(prep.item_ids)

    def column(*names: str, missing: float = 0.0) -> torch.Tensor:
        return torch.tensor(truth[list(names)].fillna(missing).to_numpy(np.float32)).squeeze(1)

    vectors = column(*(f"vec_{d}" for d in range(TASTE_DIM)))
    category = pd.Categorical(truth["category"], categories=CATEGORIES).codes.astype(np.int64)
    return vectors, column("popularity", missing=-10), column("bias", missing=-10), category


def map_tastes(
    train: pd.DataFrame, prep: Prepared, vectors: torch.Tensor, popularity: torch.Tensor,
    category: np.ndarray, iterations: int,
) -> torch.Tensor:  # fmt: skip
    """Each customer's taste by maximum a posteriori from their training interactions.

    Every item a customer interacted with (once, however many events) counts as one draw of the
    simulator's choice model: softmax of
    ``taste . vector / T + popularity`` over the items of the item's category. The prior is the
    simulator's. The objective is convex in the tastes; L-BFGS solves all customers at once.
    """
    train = train.drop_duplicates(["customer_id", "item_id"])
    customers = torch.as_tensor(pd.Index(prep.customer_ids).get_indexer(train["customer_id"]))
    items = torch.as_tensor(pd.Index(prep.item_ids).get_indexer(train["item_id"]))
    item_category = torch.as_tensor(category)
    groups = []
    for c in range(len(CATEGORIES)):
        rows = torch.nonzero(item_category[items] == c).squeeze(1)
        if len(rows):
            groups.append((rows, torch.nonzero(item_category == c).squeeze(1)))
    prior_var = TASTE_SCALE**2 / TASTE_DIM
    taste = torch.zeros(len(prep.customer_ids), TASTE_DIM, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [taste], max_iter=iterations, history_size=10, line_search_fn="strong_wolfe"
    )

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        loss = (taste**2).sum() / (2 * prior_var)
        for rows, choices in groups:
            t = taste[customers[rows]]
            logits = t @ vectors[choices].T / CHOICE_TEMPERATURE + popularity[choices]
            chosen = (t * vectors[items[rows]]).sum(1) / CHOICE_TEMPERATURE + popularity[items[rows]]
            loss = loss + (torch.logsumexp(logits, 1) - chosen).sum()
        loss.backward()
        return loss

    optimizer.step(objective)
    return taste.detach()


def ranking(prep: Prepared, tastes: torch.Tensor, vectors: torch.Tensor, bias: torch.Tensor) -> dict:
    """The evaluation of ``crm train recommender`` for scores ``taste . vector / T + bias``."""

    def score(rows: np.ndarray) -> np.ndarray:
        return (tastes[torch.as_tensor(rows)] @ vectors.T / CHOICE_TEMPERATURE + bias).numpy()

    metrics = evaluate_scores(score, prep)
    return {k: round(v, 4) for k, v in metrics.items() if k.endswith("_10")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a simulated contract folder with truth/ (default: demo)")
    parser.add_argument("--iterations", type=int, default=60, help="L-BFGS iterations (default 60)")
    parser.add_argument("--metrics-json", type=Path, help="crm train recommender's metrics on the same data")
    args = parser.parse_args()
    torch.set_num_threads(1)  # two OpenMP threads spun on the 2-core machine (see two_tower.py)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "demo"
            synth(SynthConfig(preset="demo", seed=42, out=data))
        con = open_validated(data)
        split = load_split(con, RecommenderTrainConfig(data=data))
        prep = prepare(con, split)
        con.close()
        vectors, popularity, bias, category = item_truth(data, prep)
        truth = _read_truth(data, "customers.parquet").set_index("customer_id").reindex(prep.customer_ids)
    true_tastes = torch.tensor(truth[[f"taste_{d}" for d in range(TASTE_DIM)]].fillna(0).to_numpy(np.float32))
    estimated = map_tastes(split.train, prep, vectors, popularity, category, args.iterations)
    correlation = [float(np.corrcoef(estimated[:, d], true_tastes[:, d])[0, 1]) for d in range(TASTE_DIM)]
    result = {
        "benchmark": "recommender_ceiling",
        "data": str(args.data or "demo preset, seed 42"),
        "split": split.info,
        "train_interactions": len(split.train),
        "test_customers": len(prep.test_rows),
        "true_tastes": ranking(prep, true_tastes, vectors, bias),
        "known_items": ranking(prep, estimated, vectors, bias),
        "known_items_taste_correlation_mean": round(float(np.mean(correlation)), 3),
    }
    if args.metrics_json:
        trained = {k: v["recall"] for k, v in json.loads(args.metrics_json.read_text())["models"].items()}
        best = max(trained[b] for b in BASELINES if b in trained)
        two_tower = trained["two_tower"]
        ceiling = result["known_items"]["recall_at_10"]
        result |= {
            "trained_recall_at_10": trained,
            "target_recall_at_10": round(1.2 * best, 4),
            "two_tower_share_of_known_items": round(two_tower / ceiling, 3),
            "known_items_over_best_baseline": round(ceiling / best, 3),
        }
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
