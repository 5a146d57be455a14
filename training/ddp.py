"""Two-tower training with torch.distributed (DDP): the scale path of the recommender job.

Run under torchrun, one process per worker (gloo on CPU, nccl when a GPU is present)::

    torchrun --nproc_per_node 2 -m training.ddp --data DIR --split time --metrics-json out.json
    torchrun --nnodes 4 --nproc_per_node 8 --rdzv_endpoint HOST:29400 -m training.ddp --data DIR ...

Every rank prepares the same split (the preparation is deterministic) and runs the job's own
training function (:func:`training.recommender.train_two_tower`) with the process group as its
workers: the ranks walk the same seeded permutation of the examples, a global batch of
``batch_size`` examples is cut into one slice per rank and DDP averages the gradients, so one step
sees the same examples as a one-process step. What changes is that each rank's in-batch negatives
come from its own slice, so results agree within a tolerance rather than exactly (see
tests/training/test_ddp.py). The category head and the refinement that follow need no shared
gradients: every rank fits them alike on the same towers. Rank 0 evaluates the served form on the
holdout and writes the metrics JSON.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import date
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from features.contract import open_validated
from features.vocab import SPLITS
from training.recommender import RecommenderTrainConfig, load_split, train_two_tower
from training.recommender_data import prepare
from training.recommender_eval import evaluate_retrieval
from training.two_tower import Workers


class ProcessGroup(Workers):
    """The ranks of the initialised default process group as the two-tower task's workers."""

    def __init__(self) -> None:
        self.rank, self.world = dist.get_rank(), dist.get_world_size()

    def wrap(self, model: nn.Module) -> nn.Module:
        return DistributedDataParallel(model)

    def sum(self, values: list[float]) -> list[float]:
        total = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(total)
        return total.tolist()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Two-tower training under torchrun (DDP).")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="time", choices=SPLITS)
    parser.add_argument("--split-date", type=date.fromisoformat, default=None)
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--metrics-json", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict | None:
    """Train on every rank; rank 0 returns (and writes) the holdout figures, the others None."""
    args = parse_args(argv)
    dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    try:
        cfg = RecommenderTrainConfig(
            data=args.data, split=args.split, split_date=args.split_date, test_fraction=args.test_fraction,
            epochs=args.epochs, seed=args.seed, baselines=False, log_model=False,
        )  # fmt: skip
        con = open_validated(cfg.data)
        prep = prepare(con, load_split(con, cfg))
        workers = ProcessGroup()
        trained = train_two_tower(con, prep, cfg, workers=workers)
        if workers.rank != 0:
            return None
        doc = {
            "model": "two_tower",
            "world_size": workers.world,
            "backend": dist.get_backend(),
            "train_seconds": round(trained.seconds, 2),
            "losses": trained.losses,
            "metrics": evaluate_retrieval(trained.retrieval, prep),
        }
        if args.metrics_json:
            args.metrics_json.parent.mkdir(parents=True, exist_ok=True)
            args.metrics_json.write_text(json.dumps(doc, indent=2))
        return doc
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
