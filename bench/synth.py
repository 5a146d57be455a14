"""Simulator speed, memory and calibration per preset. JSON on stdout.

    python -m bench.synth [--presets demo,large] [--repeats 1] [--no-calibration]

Each run is a fresh child process (`crm data synth`), so peak memory is that process's own
(ru_maxrss of the child). Medians over repeats. The calibration of the first run is read back from
its data folder (``features.synth.read_calibration``, outside the timing): the revenue shares net
of returns and gross beside the targets, the purchases' category mix, the cart-to-purchase
conversion and the phone lifecycle (the median gap between one customer's consecutive phone
purchases over customers with two or more, which the two-year window censors, so beside it the
share of phone owners replacing within the window, the replacement rate it implies and the
Kaplan-Meier lifetime over every phone).
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

from features.synth import read_calibration


def one_run(preset: str, seed: int, calibration: bool = False) -> dict:
    """Simulate ``preset`` in a child process: its events, seconds, peak memory and disk use, and
    with ``calibration`` the figures :func:`read_calibration` reads from its data."""
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
        figures = {"calibration": read_calibration(out)} if calibration else {}
    return (
        info
        | {"seconds": seconds, "peak_rss_mb": max(peak_kb, before) / 1024, "disk_mb": disk / 2**20}
        | figures
    )


def _headline(calibration: dict | None) -> dict:
    """The calibration's headline figures first, then the whole of it."""
    if calibration is None:
        return {}
    phone = calibration["phone"]
    return {
        "phone_gap_days_median": phone["gap_days_median"],
        "customers_with_2plus_phones": phone["customers_with_2plus_phones"],
        "phone_owners_replacing_in_window_share": phone.get("owners_replacing_in_window_share"),
        "phone_replacement_rate_per_owner_year": phone.get("replacement_rate_per_owner_year"),
        "phone_lifetime_years_median": phone.get("lifetime_years", {}).get("p50"),
        "revenue_shares_net": calibration["revenue_shares_net"],
        "cart_conversion": calibration["cart_conversion"]["conversion"],
        "calibration": calibration,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="demo,large")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-calibration", action="store_true", help="skip reading the calibration back")
    args = parser.parse_args()
    results = []
    for preset in args.presets.split(","):
        runs = [
            one_run(preset, args.seed, calibration=not args.no_calibration and r == 0)
            for r in range(args.repeats)
        ]
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
            | _headline(runs[0].get("calibration"))
        )
        print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"benchmark": "synth", "results": results}, indent=2))


if __name__ == "__main__":
    main()
