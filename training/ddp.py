"""Two-tower training with torch.distributed (DDP): the scale path of DESIGN.md section 8.

Run under torchrun, one process per worker (gloo on CPU, nccl when a GPU is present)::

    torchrun --nproc_per_node 2 -m training.ddp --data DIR --split time --metrics-json out.json
    torchrun --nnodes 4 --nproc_per_node 8 --rdzv_endpoint HOST:29400 -m training.ddp --data DIR ...

Every rank prepares the same split (the preparation is deterministic) and walks the same seeded
permutation of the examples; a global batch of ``batch_size`` examples is cut into one slice per
rank, DDP averages the gradients, so one step sees the same examples as a one-process step. What
changes is that each rank's in-batch negatives come from its own slice, so results agree within a
tolerance rather than exactly (see tests/training/test_ddp.py). Rank 0 evaluates on the holdout
and writes the metrics JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from features.contract import open_validated
from serving.retrieval import ItemLists, Retrieval
from training.recommender import (
    RecommenderTrainConfig,
    evaluate_retrieval,
    load_split,
    prepare,
    tower_inputs,
)
from training.two_tower import TwoTowerConfig, TwoTowerTrainTask, export_bundle


def fit_distributed(task: TwoTowerTrainTask, rank: int, world: int) -> list[float]:
    """Train ``task`` with its model wrapped in DDP; each rank takes its slice of every global batch."""
    torch.set_num_threads(task.cfg.threads)
    inputs, cfg = task.inputs, task.cfg
    ddp = DistributedDataParallel(task.model)
    module = task.model
    task.model = ddp  # batch_loss calls self.model(...): the DDP wrapper all-reduces gradients
    customers = torch.as_tensor(inputs.example_customer, dtype=torch.long)
    items = torch.as_tensor(inputs.example_item, dtype=torch.long)
    weights = torch.as_tensor(inputs.example_weight, dtype=torch.float32)
    order_gen = torch.Generator().manual_seed(cfg.seed)  # the same permutation on every rank
    losses = []
    ddp.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(items), generator=order_gen)
        total = torch.zeros(2)
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size][rank::world]
            if len(idx) < 2:
                # keep the ranks in step: every rank must call backward the same number of times
                idx = order[start : start + cfg.batch_size][:2]
            loss = task.batch_loss(customers[idx], items[idx], weights[idx])
            task.optimizer.zero_grad()
            loss.backward()
            task.optimizer.step()
            total += torch.tensor([float(loss.detach()) * len(idx), float(len(idx))])
        dist.all_reduce(total)
        losses.append(float(total[0] / total[1]))
    task.model = module
    module.eval()
    return losses


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description="Two-tower training under torchrun (DDP).")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="time", choices=["time", "random-per-user"])
    parser.add_argument("--split-date", type=date.fromisoformat, default=None)
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--metrics-json", type=Path, default=None)
    args = parser.parse_args(argv)

    use_cuda = torch.cuda.is_available()
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        cfg = RecommenderTrainConfig(
            data=args.data, split=args.split, split_date=args.split_date, test_fraction=args.test_fraction,
            epochs=args.epochs, seed=args.seed, baselines=False, log_model=False,
        )  # fmt: skip
        con = open_validated(cfg.data)
        prep = prepare(con, load_split(con, cfg))
        tt = TwoTowerConfig(dim=cfg.dim, epochs=cfg.epochs, temperature=cfg.temperature,
                            history_len=cfg.history_len, seed=cfg.seed)  # fmt: skip
        inputs, names = tower_inputs(con, prep, tt)
        task = TwoTowerTrainTask(inputs, tt)
        start = time.perf_counter()
        losses = fit_distributed(task, rank, world)
        seconds = time.perf_counter() - start
        if rank != 0:
            return None
        counts = np.asarray((prep.matrix > 0).sum(axis=0)).ravel()
        recent = [prep.recent.row(r)[: tt.history_len] for r in range(prep.recent.rows)]
        bundle = export_bundle(
            task, customer_ids=prep.customer_ids, item_ids=prep.item_ids,
            item_category=prep.items["category"].to_numpy(), item_active=prep.items["active"].to_numpy(),
            owned=prep.owned,
            recent=ItemLists.from_lists(recent),
            popularity=counts / max(counts.sum(), 1), meta={"customer_features": names},
        )  # fmt: skip
        metrics = evaluate_retrieval(Retrieval(bundle), prep)
        doc = {
            "model": "two_tower",
            "world_size": world,
            "backend": dist.get_backend(),
            "train_seconds": round(seconds, 2),
            "losses": losses,
            "metrics": metrics,
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
