"""Benchmarks that print JSON; each runs as ``python -m bench.NAME`` from the repository root."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def emit(doc: Any, out: Path | None, default: Callable[[Any], Any] | None = None) -> None:
    """A bench's figures as indented JSON on stdout, and in ``out`` (its folder made) when given."""
    text = json.dumps(doc, indent=2, default=default)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    print(text)
