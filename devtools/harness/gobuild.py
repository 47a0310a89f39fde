"""Build the small Go programs of the test harness, cached by the hash of their sources.

``build_go_binary(src_dir, name)`` returns the path of a binary built from ``src_dir``
(a Go main module). The binary is kept in the cache dir (``$ROLLUP_HARNESS_CACHE`` or
``~/.cache/rollup-operator/``) under ``bin/<name>-<hash>``, where the hash covers go.mod,
go.sum, every ``*.go`` file of ``src_dir`` and the Go version: it is rebuilt only when one
of those changes. A file lock keeps two processes (pytest-xdist workers, CI and a developer)
from building the same thing at once. Go's own build cache makes a rebuild after a small
change take seconds (~15 s, mostly linking); a cold build of the kube-apiserver took
4.5 minutes on 2 cores here (module downloads included; allow up to 15), so progress is printed every 30 s.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

Progress = Callable[[str], None]

HARNESS_DIR = Path(__file__).resolve().parent
DEVTOOLS_DIR = HARNESS_DIR.parent
GO_DIR = DEVTOOLS_DIR / "go"  # one Go main module a folder: apiserver, kstatus, node, helm, promtool, ...
REPO_ROOT = DEVTOOLS_DIR.parent

# Go binary: PATH first, then the usual install location.
_GO_CANDIDATES = ("/usr/local/go/bin/go", "/usr/lib/go/bin/go")


class GoToolchainMissing(RuntimeError):
    """No `go` command on this machine."""


class GoBuildError(RuntimeError):
    """`go build` failed; the message carries the tail of its output."""


def find_go() -> str | None:
    go = shutil.which("go")
    if go:
        return go
    for cand in _GO_CANDIDATES:
        if os.access(cand, os.X_OK):
            return cand
    return None


def cache_dir() -> Path:
    base = os.environ.get("ROLLUP_HARNESS_CACHE")
    d = Path(base).expanduser() if base else Path.home() / ".cache" / "rollup-operator"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _go_version(go: str) -> str:
    try:
        return subprocess.run([go, "version"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:  # pragma: no cover - broken toolchain
        raise GoToolchainMissing(f"`{go} version` failed: {e}") from e


def source_hash(src_dir: Path, go: str | None = None, package: str = ".", tags: tuple[str, ...] = (),
                ldflags: str = "") -> str:
    """Hash of go.mod, go.sum, all *.go files of src_dir (not recursive), the package and build
    tags built, and the Go version."""
    src_dir = Path(src_dir)
    h = hashlib.sha256()
    if package != "." or tags or ldflags:
        h.update(f"package={package} tags={','.join(tags)} ldflags={ldflags}\0".encode())
    files = [src_dir / "go.mod", src_dir / "go.sum", *sorted(src_dir.glob("*.go"))]
    for f in files:
        if f.exists():
            h.update(f.name.encode() + b"\0")
            h.update(f.read_bytes())
            h.update(b"\0")
    if go:
        h.update(_go_version(go).encode())
    return h.hexdigest()[:16]


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Never try to download another toolchain; never stamp VCS info (the module lives
    # inside the project's git repo, and stamping would make builds depend on its state).
    env.setdefault("GOTOOLCHAIN", "local")
    flags = env.get("GOFLAGS", "").split()
    if not any(f.startswith("-buildvcs") for f in flags):
        flags.append("-buildvcs=false")
    env["GOFLAGS"] = " ".join(flags)
    return env


def _is_package_line(line: str) -> bool:
    # `go build -v` prints one import path per compiled package: no spaces, no colon.
    s = line.strip()
    return bool(s) and " " not in s and ":" not in s and not s.startswith("#")


def build_go_binary(
    src_dir: Path | str,
    name: str,
    progress: Progress | None = print,
    interval: float = 30.0,
    package: str = ".",
    tags: tuple[str, ...] = (),
    ldflags: str = "",
) -> Path:
    """Return the path of the binary built from ``src_dir``; build it if not cached.

    ``package`` is what `go build` builds inside that module: ``.`` (its own main package), or the
    import path of a tool's main package that the module requires (e.g. ``helm.sh/helm/v3/cmd/helm``,
    pinned by a ``tools.go``); ``tags`` are Go build tags, ``ldflags`` go build's -ldflags (e.g. the
    -X version stamps a tool's own Makefile sets)."""
    progress = progress or (lambda _msg: None)
    src_dir = Path(src_dir).resolve()
    go = find_go()
    if not go:
        raise GoToolchainMissing("the Go toolchain (`go`) is not installed / not on PATH")
    key = source_hash(src_dir, go, package, tags, ldflags)
    bindir = cache_dir() / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    target = bindir / f"{name}-{key}"
    if target.exists():
        return target

    lock_path = cache_dir() / f"{name}.lock"
    with open(lock_path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"[harness] another process is building {name}; waiting for its lock ({lock_path})")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():  # built by whoever held the lock
            return target
        _build_locked(go, src_dir, name, target, progress, interval, package, tags, ldflags)
        # Keep only the current build of this binary (they are ~150 MB each).
        for old in bindir.glob(f"{name}-*"):
            if old != target and not old.name.endswith(".tmp"):
                try:
                    old.unlink()
                except OSError:
                    pass
    return target


def _build_locked(go: str, src_dir: Path, name: str, target: Path, progress: Progress, interval: float,
                  package: str = ".", tags: tuple[str, ...] = (), ldflags: str = "") -> None:
    log_path = cache_dir() / f"{name}-build.log"
    tmp = target.with_name(target.name + ".tmp")
    cmd = [go, "build", "-v", *(["-tags", ",".join(tags)] if tags else []),
           *(["-ldflags", ldflags] if ldflags else []), "-o", str(tmp), package]
    progress(f"[harness] building {name} from {src_dir} (go build: with a cold Go cache the kube-apiserver takes ~5 min "
             f"on 2 cores (allow 15), later builds seconds); log: {log_path}")
    t0 = time.monotonic()
    packages = 0
    tail: list[str] = []
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=src_dir, env=_go_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1,
        )

        def reader() -> None:
            nonlocal packages
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                log.flush()
                if _is_package_line(line):
                    packages += 1
                else:
                    tail.append(line.rstrip())
                    del tail[:-40]
                    progress(f"[harness] go: {line.rstrip()}")

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        next_report = t0 + interval
        while proc.poll() is None:
            time.sleep(0.5)
            now = time.monotonic()
            if now >= next_report:
                progress(f"[harness] still building {name}: {now - t0:.0f}s elapsed, {packages} packages compiled")
                next_report = now + interval
        th.join(timeout=10)
    elapsed = time.monotonic() - t0
    if proc.returncode != 0:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise GoBuildError(
            f"go build of {name} failed (exit {proc.returncode}) after {elapsed:.0f}s; full log: {log_path}\n"
            + "\n".join(tail[-30:])
        )
    os.replace(tmp, target)
    progress(f"[harness] built {name} in {elapsed:.1f}s ({packages} packages compiled) -> {target}")
