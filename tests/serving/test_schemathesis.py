"""Schemathesis with every check (``--checks all``) against the real server and its own document.

The command line runs as a user would run it, against `live_server` on loopback (a token, so
the bearer scheme and the 401s are checked too), bounded and reproducible: a fixed seed, the
deterministic mode, a few examples per operation and one worker. Its phases (examples, coverage,
fuzzing) send the documented requests and the edge cases around them; every answer must be
documented, match its schema, and accept what the schema allows and refuse what it does not.
/reload is left out: each call reloads both models (seconds); test_service.py tests it.
"""

from __future__ import annotations

import subprocess
import sys

from tests.serving.conftest import LIVE_TOKEN

SEED = 18
MAX_EXAMPLES = 10


def test_schemathesis_all_checks_pass(live_server, tmp_path):
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{live_server}/docs.json",
        "--header", f"Authorization: Bearer {LIVE_TOKEN}",
        "--checks", "all", "--exclude-path", "/reload",
        "--seed", str(SEED), "--generation-deterministic", "--max-examples", str(MAX_EXAMPLES),
        "--workers", "1", "--request-timeout", "30", "--no-color",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:]
    assert " passed" in result.stdout.split("SUMMARY")[-1], result.stdout[-2000:]
