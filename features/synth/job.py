"""The simulator's job: simulate a preset chunk by chunk and write the data folder."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from features.synth.config import CHUNK_CUSTOMERS, SynthConfig
from features.synth.population import Catalogue, make_catalogue
from features.synth.weekly import ChunkOutput, simulate_chunk

if TYPE_CHECKING:
    from rich.progress import Progress


@dataclass
class SynthResult:
    """What a run wrote: per table its rows and path, the number of events and the time taken."""

    out: Path
    tables: dict[str, tuple[int, Path]] = field(default_factory=dict)
    events: int = 0
    seconds: float = 0.0


def run(cfg: SynthConfig, progress: bool = False) -> SynthResult:
    """Simulate a preset and write events/, customers.parquet, items.parquet, campaigns/ and truth/."""
    start = time.perf_counter()
    n_customers, n_items = cfg.sizes()
    out = Path(cfg.out)
    for sub in ("events", "campaigns", "truth/monthly", "truth/campaigns"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    catalogue_seed, chunks_seed = np.random.SeedSequence(cfg.seed).spawn(2)
    catalogue = make_catalogue(n_items, np.random.default_rng(catalogue_seed))
    customers, truth, events, campaign_rows = _simulate_chunks(
        n_customers, catalogue, chunks_seed, out, progress
    )
    customers.to_parquet(out / "customers.parquet", index=False)
    items = catalogue.frame()
    items.to_parquet(out / "items.parquet", index=False)
    truth.to_parquet(out / "truth" / "customers.parquet", index=False)
    catalogue.truth().to_parquet(out / "truth" / "items.parquet", index=False)
    return SynthResult(
        out=out,
        tables={
            "events": (events, out / "events"),
            "customers": (len(customers), out / "customers.parquet"),
            "items": (len(items), out / "items.parquet"),
            "campaigns": (campaign_rows, out / "campaigns"),
            "truth": (len(customers), out / "truth"),
        },
        events=events,
        seconds=time.perf_counter() - start,
    )


def _simulate_chunks(
    n_customers: int, catalogue: Catalogue, seed: np.random.SeedSequence, out: Path, progress: bool
) -> tuple[pd.DataFrame, pd.DataFrame, int, int]:
    """Simulate and write the chunks one at a time; return the customers, their truth and the
    numbers of events and campaign rows (both are written per chunk, so they never sit in memory
    together)."""
    n_chunks = -(-n_customers // CHUNK_CUSTOMERS)
    customer_parts, truth_parts, events, campaign_rows = [], [], 0, 0
    bar = _progress(progress, n_chunks)
    for k, chunk_seed in enumerate(seed.spawn(n_chunks)):
        first = k * CHUNK_CUSTOMERS
        chunk = simulate_chunk(first, min(CHUNK_CUSTOMERS, n_customers - first), catalogue, chunk_seed)
        _write_chunk(chunk, out, k)
        customer_parts.append(chunk.customers)
        truth_parts.append(chunk.truth_customers)
        events += chunk.events.num_rows
        campaign_rows += len(chunk.campaigns)
        if bar is not None:
            bar.update(bar.task_ids[0], advance=1, events=events)
    if bar is not None:
        bar.stop()
    customers = pd.concat(customer_parts, ignore_index=True)
    return customers, pd.concat(truth_parts, ignore_index=True), events, campaign_rows


def _write_chunk(chunk: ChunkOutput, out: Path, k: int) -> None:
    pq.write_table(chunk.events, out / "events" / f"part-{k:05d}.parquet", compression="zstd")
    chunk.truth_monthly.to_parquet(out / "truth" / "monthly" / f"part-{k:05d}.parquet", index=False)
    chunk.campaigns.to_parquet(out / "campaigns" / f"part-{k:05d}.parquet", index=False)
    chunk.truth_campaigns.to_parquet(out / "truth" / "campaigns" / f"part-{k:05d}.parquet", index=False)


def _progress(enabled: bool, total: int) -> Progress | None:
    if not enabled:
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("simulating customers"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} chunks, {task.fields[events]:,} events"),
        TimeElapsedColumn(),
    )
    bar.add_task("synth", total=total, events=0)
    bar.start()
    return bar


def simulator_version() -> str:
    """A digest of the simulator's code: data simulated by other code is not this preset's data.

    ``crm demo`` keys its simulate step with it, so an upgrade that changes what the simulator
    writes (a new table, a recalibration) simulates again instead of reusing the old folder.
    """
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]
