"""Simulator speed and memory: events per second and peak RSS per preset. JSON on stdout.

    python -m bench.synth [--presets demo,large] [--repeats 1]

Each run is a fresh child process (`crm data synth`), so peak memory is that process's own
(ru_maxrss of the child). Medians over repeats.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(preset: str, seed: int) -> dict:
    """Simulate ``preset`` in a child process: its events, seconds, peak memory and disk use."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "data"
        code = (
            "import json, sys; from features.synth import SynthConfig, run;"
            f"r = run(SynthConfig(preset={preset!r}, seed={seed}, out=sys.argv[1]));"
            "print(json.dumps({'events': r.events, 'customers': r.tables['customers'][0]}))"
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", code, str(out)], capture_output=True, text=True, check=True
        )
        seconds = time.perf_counter() - start
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return info | {
        "seconds": seconds,
        "peak_rss_mb": max(peak_kb, before) / 1024,
        "disk_mb": disk / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="demo,large")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    results = []
    for preset in args.presets.split(","):
        runs = [one_run(preset, args.seed) for _ in range(args.repeats)]
        seconds = statistics.median(r["seconds"] for r in runs)
        results.append(
            {
                "preset": preset,
                "customers": runs[0]["customers"],
                "events": runs[0]["events"],
                "seconds_median": round(seconds, 2),
                "events_per_second": round(runs[0]["events"] / seconds),
                "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs)),
                "disk_mb": round(runs[0]["disk_mb"]),
                "repeats": args.repeats,
            }
        )
        print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"benchmark": "synth", "results": results}, indent=2))


if __name__ == "__main__":
    main()
