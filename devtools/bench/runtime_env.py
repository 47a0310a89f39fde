"""The operator's Python environment as the image has it: the runtime dependencies only.

The development venv also holds the test tools (the ``kubernetes`` client, pytest, mypy...). kopf
imports the ``kubernetes`` client at start-up whenever it is installed (to recognise its models),
which alone costs the operator ~13 MiB of RSS the image never pays. So the benchmark runs the
operator from a venv with exactly ``[project].dependencies`` of pyproject.toml, resolved by pip as
the Dockerfile's ``pip install`` does, and the operator's source from the checkout
(``PYTHONPATH=operator``). It is cached under the harness cache dir by the hash of that list and
the Python version, and made under a file lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import platform
import subprocess
import sys
import tomllib
from pathlib import Path

from devtools.harness.gobuild import REPO_ROOT, cache_dir


def runtime_dependencies() -> list[str]:
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def runtime_python(log=print) -> str:
    """The python of the runtime-only venv (made on first use)."""
    deps = runtime_dependencies()
    digest = hashlib.sha256("\n".join([platform.python_version(), *deps]).encode()).hexdigest()[:16]
    root = cache_dir() / f"runtime-venv-{digest}"
    python = root / "bin" / "python"
    done = root / ".complete"
    with open(cache_dir() / "runtime-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            log(f"making the runtime-only venv {root} ({', '.join(deps)})")
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *deps], check=True)
            done.write_text("\n".join(deps) + "\n")
    return str(python)


def operator_env() -> dict[str, str]:
    """Environment additions that put the checkout's operator source on that venv's path."""
    return {"PYTHONPATH": str(Path(REPO_ROOT) / "operator")}
