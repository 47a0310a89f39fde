"""kstatus (sigs.k8s.io/cli-utils v0.37.2 pkg/kstatus/status) as a Python function.

``compute(objs)`` runs the small Go CLI of ``devtools/go/kstatus/`` and returns, for each object,
``{"name", "namespace"?, "kind", "status", "message", "conditions"?, "error"?}`` where status is
one of ``Current``, ``InProgress``, ``Failed``, ``Terminating``, ``NotFound``, ``Unknown`` --
the same verdict `kubectl wait`-style tooling (kpt, Config Sync, Flux) would give.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .gobuild import GO_DIR, Progress, build_go_binary

SRC_DIR = GO_DIR / "kstatus"
BINARY_NAME = "kstatus"

_binary: Path | None = None


def ensure_built(progress: Progress | None = print) -> Path:
    """Build (or reuse the cached) kstatus binary and return its path."""
    global _binary
    _binary = build_go_binary(SRC_DIR, BINARY_NAME, progress=progress)
    return _binary


def compute(objs: list[dict] | dict) -> list[dict]:
    """kstatus of each object (a single dict is accepted too; a list is always returned)."""
    binary = _binary or ensure_built()
    proc = subprocess.run(
        [str(binary)], input=json.dumps(objs), capture_output=True, text=True, timeout=60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"kstatus failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def compute_one(obj: dict) -> dict:
    return compute([obj])[0]
