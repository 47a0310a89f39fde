"""Install an npm package set once, cached by the hash of its package.json and package-lock.json.

``ensure_installed(pkg_dir)`` returns a directory holding ``node_modules`` for ``pkg_dir``'s
lock file, under ``~/.cache/rollup-operator/npm-<hash>`` (``$ROLLUP_HARNESS_CACHE`` moves it). A
file lock keeps two processes from installing at once; the install runs in a temporary directory
that is renamed into place only when ``npm ci`` succeeded, so a broken install is never reused.
The cold install time is written beside it (``install-seconds``).
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from devtools.harness.gobuild import cache_dir


class NpmMissing(RuntimeError):
    pass


def lock_hash(pkg_dir: Path) -> str:
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        h.update(name.encode() + b"\0" + (pkg_dir / name).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def ensure_installed(pkg_dir: Path, progress=print) -> Path:
    npm = shutil.which("npm")
    if not npm:
        raise NpmMissing("npm is not installed")
    root = cache_dir()
    target = root / f"npm-{lock_hash(pkg_dir)}"
    if (target / "node_modules").is_dir():
        return target
    with open(root / "npm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "node_modules").is_dir():
            return target
        tmp = Path(tempfile.mkdtemp(prefix="npm-", dir=root))
        try:
            for name in ("package.json", "package-lock.json"):
                shutil.copy(pkg_dir / name, tmp / name)
            progress(f"[npm] installing {pkg_dir.name} into {target} (cold, once)")
            t0 = time.monotonic()
            proc = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                                  cwd=tmp, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"npm ci failed in {tmp}:\n{proc.stderr[-3000:]}")
            (tmp / "install-seconds").write_text(f"{time.monotonic() - t0:.1f}\n")
            tmp.rename(target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target
