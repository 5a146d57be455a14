"""Churn model speed: training on a 1M-row snapshot with fixed parameters, and scoring throughput.
JSON on stdout.

    python bench/churn.py [--rows 1000000] [--repeats 3]

The snapshot is the tiny preset's real snapshot resampled to ``--rows`` customers with jitter on
the numeric columns, labelled by a logistic function of recency, tickets and engagement (so the
trees have signal to learn). Fixed parameters, 200 rounds, no early stopping. Scoring is timed for
calibrated probabilities on all rows and, separately, for probabilities plus top-3 reasons
(path attributions read off the trees, see ``ChurnModel.contributions``) on 10,000 rows, the size
of one /churn_score batch.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from features.contract import open_validated  # noqa: E402
from features.snapshot import build_snapshot  # noqa: E402
from features.synth import SynthConfig  # noqa: E402
from features.synth import run as synth  # noqa: E402
from training.churn import ChurnParams, fit  # noqa: E402


def big_snapshot(rows: int, seed: int = 0) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        synth(SynthConfig(preset="tiny", seed=seed, out=Path(tmp) / "d"))
        base = build_snapshot(open_validated(Path(tmp) / "d"), "2025-10-01")
    rng = np.random.default_rng(seed)
    frame = base.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    numeric = frame.select_dtypes("number").columns
    frame[numeric] = frame[numeric] * rng.uniform(0.9, 1.1, (rows, len(numeric)))
    frame["customer_id"] = [f"B{i:08d}" for i in range(rows)]
    recency = frame["days_since_last_purchase"].fillna(700).to_numpy()
    logit = 0.006 * recency + 0.5 * frame["service_tickets_90d"] - 0.15 * frame["app_opens_90d"] - 0.8
    frame["churned"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    frame = big_snapshot(args.rows)
    cut = int(0.9 * len(frame))
    train, valid = frame.iloc[:cut], frame.iloc[cut:]
    params = ChurnParams(max_rounds=200, early_stopping=10_000)
    fit_seconds, (model, rounds) = timed(lambda: fit(params, train, valid))
    score_all, reasons = [], []
    sample = frame.head(10_000)
    for _ in range(args.repeats):
        score_all.append(timed(lambda: model.probability(frame))[0])
        reasons.append(timed(lambda: model.score(sample))[0])
    score_median, reasons_median = statistics.median(score_all), statistics.median(reasons)
    print(
        json.dumps(
            {
                "benchmark": "churn",
                "rows": len(frame),
                "features": len(model.features),
                "rounds": rounds,
                "train_seconds": round(fit_seconds, 2),
                "train_rows_per_second": round(len(train) / fit_seconds),
                "score_1m_seconds_median": round(score_median * 1_000_000 / len(frame), 2),
                "score_customers_per_second": round(len(frame) / score_median),
                "score_with_reasons_10k_seconds_median": round(reasons_median, 3),
                "score_with_reasons_customers_per_second": round(len(sample) / reasons_median),
                "repeats": args.repeats,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
