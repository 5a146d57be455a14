"""Recommender speed: two-tower training throughput and batch top-10 for 1M customers. JSON out.

    python bench/recommender.py [--data DIR | --preset tiny] [--epochs 2]
                                [--customers 1000000] [--items 5000] [--k 10] [--threads 2] [--out FILE]

- Training throughput: the two-tower model trained on the time split of ``--data`` (default: the
  tiny synthetic preset, generated into a temporary folder), in (customer, item) training
  interactions per second over ``--epochs`` epochs (data preparation excluded).
- Refinement: the per-customer refinement of the trained towers (``refine_customers``) on the
  same data, in customers per second.
- Batch recommendation: a bundle with random towers of the trained model's shape for
  ``--customers`` customers (each owning 0-12 items) over ``--items`` items, then
  ``Retrieval.recommend_arrays`` for all of them, top ``--k``, owned and inactive items filtered,
  timed end to end (id lookup, customer tower, FAISS search, filters), plus the long-format frame.
  The bundle has what ``crm train recommender`` writes on a time split: the per-customer
  refinement and the category head (whose per-category normalisation scores every item once
  more); the same bundle without them is timed in the same run as the floor (``towers_only_*``).

Threads: FAISS and torch are limited to ``--threads`` (the 2-core target).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from bench import emit

# Run as a script, this file's folder comes first on sys.path and would shadow our packages.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def bench_training(data: Path, epochs: int) -> dict:
    from features.contract import open_validated
    from training.recommender import RecommenderTrainConfig, load_split
    from training.recommender_data import prepare, tower_inputs
    from training.two_tower import TwoTowerConfig, TwoTowerTrainTask, refine_customers

    con = open_validated(data)
    prep = prepare(con, load_split(con, RecommenderTrainConfig(data=data)))
    tt = TwoTowerConfig(epochs=epochs)
    inputs, _ = tower_inputs(con, prep, tt)
    task = TwoTowerTrainTask(inputs, tt)
    start = time.perf_counter()
    losses = task.fit()
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    refine_customers(task, prep.matrix, inputs.item_category)
    refine_seconds = time.perf_counter() - start
    n = len(inputs.example_item)
    return {
        "train_data": str(data),
        "train_interactions": n,
        "train_epochs": epochs,
        "train_seconds": round(seconds, 2),
        "train_interactions_per_second": round(n * epochs / seconds, 1),
        "train_torch_threads": tt.threads,
        "train_loss_first_last": [round(losses[0], 4), round(losses[-1], 4)],
        "refine_seconds": round(refine_seconds, 2),
        "refine_customers_per_second": round(inputs.n_customers / refine_seconds, 1),
    }


def random_bundle(n_customers: int, n_items: int, seed: int = 0):
    """Random towers of the trained shape with a refinement and a category head (as a time split
    trains); ``towers_only()`` of it is the floor."""
    from serving.bundle import RECENT_SLOTS, CategoryIntent, ItemLists, RecommenderBundle
    from training.two_tower import TwoTowerConfig

    cfg = TwoTowerConfig()
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 13, n_customers)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    owned = ItemLists(indptr, rng.integers(0, n_items, int(indptr[-1])).astype(np.int64))
    categories = np.array(
        sorted(["phone", "smart_home", "wearable", "tv", "laptop", "accessory", "other"]), dtype=object
    )
    codes = rng.integers(0, len(categories), n_items)
    item_vectors = rng.standard_normal((n_items, cfg.dim + 1)).astype(np.float32)
    item_vectors = np.hstack([item_vectors, np.eye(len(categories), dtype=np.float32)[codes]])
    head = CategoryIntent(
        categories=categories,
        static=rng.standard_normal((n_customers + 1, cfg.head_hidden)).astype(np.float32),
        w_recent=rng.standard_normal((RECENT_SLOTS * len(categories), cfg.head_hidden)).astype(np.float32),
        w_out=rng.standard_normal((cfg.head_hidden, len(categories))).astype(np.float32),
        b_out=np.zeros(len(categories), dtype=np.float32),
    )
    return RecommenderBundle(
        item_ids=np.array([f"I{i:05d}" for i in range(n_items)], dtype=object),
        item_category=categories[codes],
        item_active=rng.random(n_items) > 0.1,
        item_vectors=item_vectors,
        popularity=rng.random(n_items),
        customer_ids=np.array([f"C{i:07d}" for i in range(n_customers)], dtype=object),
        customer_static=rng.standard_normal((n_customers + 1, cfg.hidden)).astype(np.float32),
        history_table=rng.standard_normal((n_items + 1, cfg.dim)).astype(np.float32),
        w_history=rng.standard_normal((cfg.dim, cfg.hidden)).astype(np.float32),
        w_out=rng.standard_normal((cfg.hidden, cfg.dim)).astype(np.float32),
        b_out=np.zeros(cfg.dim, dtype=np.float32),
        owned=owned,
        recent=owned,
        customer_offset=rng.standard_normal((n_customers + 1, cfg.dim)).astype(np.float32),
        intent=head,
    )


def bench_batch(n_customers: int, n_items: int, k: int) -> dict:
    from serving.retrieval import Retrieval

    bundle = random_bundle(n_customers, n_items)
    ids = list(bundle.customer_ids)
    start = time.perf_counter()
    Retrieval(bundle.towers_only()).recommend_arrays(ids, k)
    towers_seconds = time.perf_counter() - start
    retrieval = Retrieval(bundle)
    start = time.perf_counter()
    recs = retrieval.recommend_arrays(ids, k)
    search_seconds = time.perf_counter() - start
    frame = retrieval.to_frame(recs)
    total = time.perf_counter() - start
    owned_hits = 0
    for r in range(0, n_customers, max(1, n_customers // 1000)):  # spot check: owned never offered
        owned_hits += len(np.intersect1d(recs.items[r], bundle.owned.row(r)))
    return {
        "batch_customers": n_customers,
        "batch_items": n_items,
        "batch_k": k,
        "batch_recommend_seconds": round(search_seconds, 2),
        "batch_with_frame_seconds": round(total, 2),
        "batch_customers_per_second": round(n_customers / search_seconds, 1),
        "towers_only_recommend_seconds": round(towers_seconds, 2),
        "ratio_to_towers_only": round(search_seconds / towers_seconds, 2),
        "batch_rows": len(frame),
        "batch_owned_items_offered_in_sample": int(owned_hits),
        "batch_target_seconds": 60,
        "batch_meets_target": bool(total <= 60),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="Data folder for the training benchmark.")
    parser.add_argument("--preset", default="tiny", help="Synthetic preset when --data is not given.")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import faiss
    import torch

    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    figures: dict = {"bench": "recommender", "threads": args.threads, "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from features.synth import SynthConfig, run

            data = Path(tmp) / "data"
            run(SynthConfig(preset=args.preset, seed=7, out=data))
        figures |= bench_training(data, args.epochs)
    figures |= bench_batch(args.customers, args.items, args.k)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    emit(figures, args.out)


if __name__ == "__main__":
    main()
