"""Test helpers: `crm serve` as a real process on a free loopback port (for tests that go over HTTP),
and environment variables set for the length of a block."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


@contextlib.contextmanager
def env_scope(env: dict[str, str]) -> Iterator[None]:
    """Set ``env`` for the duration of a with block (session fixtures cannot use monkeypatch)."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def crm_server(
    env: dict[str, str], log: Path, *args: str, command: str = "serve", ready_timeout: float = 240
) -> Iterator[str]:
    """Run ``crm COMMAND --port P *args`` (``serve``, or ``demo``, which serves when its pipeline
    is done) until the block ends; yields the base URL once /readyz is 200."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crm.cli", command, "--port", str(port), *args],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"crm {command} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                tail = log.read_text()[-3000:]
                raise RuntimeError(f"crm {command} not ready after {ready_timeout} s:\n{tail}")
            time.sleep(0.5)
        yield base
    finally:
        stop_session(proc)


def stop_session(proc: subprocess.Popen) -> None:
    """Stop a server started with ``start_new_session`` and every process it started: SIGTERM, then
    SIGKILL after 30 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):  # the group may be gone already
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
            break
    proc.wait()
