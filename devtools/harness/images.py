"""Container images for the single-node cluster, built without Docker and without a registry.

* ``python base``: Debian's own python3 (bookworm) from ``debootstrap --variant=minbase``,
  imported with buildah (``FROM scratch`` + the rootfs). It stands in for ``python:3.11-slim``.
* ``pause``: a ten-line C program (``pause.c``) linked statically, imaged from scratch; it is
  containerd's ``sandbox_image``.
* ``operator``: the project's ``Dockerfile``, unchanged, built with ``buildah bud`` and
  ``--build-arg PYTHON_IMAGE=<the base>``. pip inside the build must trust the same certificate
  authorities as this machine: its CA bundle is mounted read-only into the build (``-v``), never
  copied into an image.

Each image is saved as an OCI archive in ``<cache>/images/`` named by the hash of what it is built
from (the base: suite, packages, mirror; pause: its source; the operator: the files the Dockerfile
copies + the Dockerfile + the base's hash), so an unchanged tree rebuilds nothing. buildah keeps
its storage in ``<cache>/buildah`` (vfs driver, chroot isolation: nothing else works here).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .gobuild import HARNESS_DIR, REPO_ROOT, Progress, cache_dir

SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PAUSE_SRC = HARNESS_DIR / "pause.c"
OPERATOR_IMAGE = "docker.io/library/rollup-operator:e2e"  # = tests/e2e/overlay's newName:newTag
# Inputs of the operator image: what the Dockerfile COPYs (see .dockerignore) and the Dockerfile.
OPERATOR_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "operator")
# The emulator image: the operator image (its Python already has aiohttp, the emulator's one dependency)
# plus emulator/es_rollup_emulator on PYTHONPATH. The emulator is not in the operator image itself.
EMULATOR_IMAGE = "localhost/rollup-harness/es-rollup-emulator:e2e"
EMULATOR_INPUTS = ("emulator/es_rollup_emulator",)


class ImageBuildError(RuntimeError):
    """A build step failed; the message carries the command and the tail of its output."""


@dataclass(frozen=True)
class Image:
    name: str      # full reference, e.g. docker.io/library/rollup-operator:e2e
    archive: Path  # OCI archive to import into containerd
    built: bool    # False when it came from the cache
    seconds: float


def _run(cmd: list[str], what: str, log: Path, timeout: float = 1800, **kw) -> str:
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, **kw)
        except FileNotFoundError as e:
            raise ImageBuildError(f"{what}: {cmd[0]} is not installed ({e})") from e
        except subprocess.TimeoutExpired as e:
            raise ImageBuildError(f"{what}: timed out after {timeout:.0f}s; log {log}") from e
        f.write(p.stdout)
    if p.returncode != 0:
        tail = "\n".join(p.stdout.splitlines()[-30:])
        raise ImageBuildError(f"{what} failed (exit {p.returncode}): {' '.join(cmd[:6])} ...; log {log}\n{tail}")
    return p.stdout


def debian_mirror() -> str:
    """The Debian mirror this machine's apt sources name (debootstrap must use the same one)."""
    texts = []
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            texts.append(p.read_text())
        except OSError:
            pass
    for text in texts:
        for m in re.finditer(r"(?:^deb\s+(?:\[[^\]]*\]\s+)?|^URIs:\s*)(\S+/debian)/?\s*$|^deb\s+(?:\[[^\]]*\]\s+)?(\S+/debian)/?\s+",
                             text, re.M):
            return m.group(1) or m.group(2)
    return "http://deb.debian.org/debian"


class Builder:
    """Builds (or takes from the cache) the three images; one file lock around all builds."""

    def __init__(self, progress: Progress | None = print) -> None:
        self.progress = progress or (lambda _m: None)
        self.dir = cache_dir() / "images"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.store = cache_dir() / "buildah"
        self.log = self.dir / "build.log"

    def buildah(self, *args: str) -> list[str]:
        return ["buildah", "--root", str(self.store / "root"), "--runroot", str(self.store / "run"),
                "--storage-driver", "vfs", *args]

    def _locked(self):
        f = open(cache_dir() / "images.lock", "w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.progress("[images] another process is building images; waiting for its lock")
            fcntl.flock(f, fcntl.LOCK_EX)
        return f

    def _have_in_store(self, name: str) -> bool:
        return subprocess.run(self.buildah("inspect", "--type", "image", name), capture_output=True).returncode == 0

    def _save(self, name: str, archive: Path) -> None:
        tmp = archive.with_name(archive.name + ".tmp")
        tmp.unlink(missing_ok=True)
        _run(self.buildah("push", name, f"oci-archive:{tmp}:{name}"), f"buildah push {name}", self.log)
        os.replace(tmp, archive)
        # Earlier builds of this image (other input hashes) go, but only once they are a day old: another
        # checkout building at the same time (a second worktree, a CI clone) may be about to import its own.
        for old in self.dir.glob(archive.name.rsplit("-", 1)[0] + "-*.tar"):
            with contextlib.suppress(OSError):
                if old != archive and time.time() - old.stat().st_mtime > 86400:
                    old.unlink()

    # ---- the three images ------------------------------------------------------------------
    def base_key(self) -> str:
        return _hash([SUITE, "minbase", debian_mirror(), *BASE_PACKAGES])

    def base(self) -> Image:
        key = self.base_key()
        name = f"localhost/rollup-harness/python-base:{key}"
        archive = self.dir / f"python-base-{key}.tar"
        with self._locked():
            return self._cached_or(name, archive, lambda: self._build_base(name))

    def _build_base(self, name: str) -> None:
        with tempfile.TemporaryDirectory(prefix="rollup-base-", dir=self.dir) as tmp:
            rootfs = Path(tmp) / "rootfs"
            self.progress(f"[images] debootstrap {SUITE} (minbase + {' '.join(BASE_PACKAGES)}) from {debian_mirror()}; ~2 min")
            _run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE, str(rootfs),
                  debian_mirror()], "debootstrap of the Python base", self.log)
            shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
            shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
            tarball = Path(tmp) / "rootfs.tar"
            _run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tarball), "."], "tar of the rootfs", self.log)
            shutil.rmtree(rootfs, ignore_errors=True)
            ctr = _run(self.buildah("from", "scratch"), "buildah from scratch", self.log).strip().splitlines()[-1]
            try:
                _run(self.buildah("add", ctr, str(tarball), "/"), "buildah add rootfs", self.log)
                _run(self.buildah("config", "--cmd", "python3", "--env", "LANG=C.UTF-8", ctr), "buildah config", self.log)
                _run(self.buildah("commit", "--rm", ctr, name), "buildah commit (base)", self.log)
            except Exception:
                subprocess.run(self.buildah("rm", ctr), capture_output=True)
                raise

    def pause(self) -> Image:
        key = _hash([PAUSE_SRC.read_bytes()])
        name = f"localhost/rollup-harness/pause:{key}"
        archive = self.dir / f"pause-{key}.tar"
        with self._locked():
            return self._cached_or(name, archive, lambda: self._build_pause(name))

    def _build_pause(self, name: str) -> None:
        with tempfile.TemporaryDirectory(prefix="rollup-pause-", dir=self.dir) as tmp:
            exe = Path(tmp) / "pause"
            _run(["gcc", "-static", "-Os", "-o", str(exe), str(PAUSE_SRC)], "gcc -static pause.c (needs gcc, libc6-dev)",
                 self.log)
            ctr = _run(self.buildah("from", "scratch"), "buildah from scratch", self.log).strip().splitlines()[-1]
            try:
                _run(self.buildah("copy", ctr, str(exe), "/pause"), "buildah copy pause", self.log)
                _run(self.buildah("config", "--entrypoint", '["/pause"]', "--user", "65535:65535", ctr), "buildah config",
                     self.log)
                _run(self.buildah("commit", "--rm", ctr, name), "buildah commit (pause)", self.log)
            except Exception:
                subprocess.run(self.buildah("rm", ctr), capture_output=True)
                raise

    def operator(self, base: Image | None = None) -> Image:
        base = base or self.base()
        key = _hash([base.name, *_tree_digest(REPO_ROOT, OPERATOR_INPUTS)])
        archive = self.dir / f"operator-{key}.tar"
        with self._locked():
            if not self._have_in_store(base.name):
                _run(self.buildah("pull", f"oci-archive:{base.archive}"), "buildah pull of the cached base", self.log)
            return self._cached_or(OPERATOR_IMAGE, archive, lambda: self._build_operator(base.name))

    def _build_operator(self, base_name: str) -> None:
        if not CA_BUNDLE.exists():
            raise ImageBuildError(f"{CA_BUNDLE} is missing: pip in the image build needs this machine's CA bundle")
        self.progress(f"[images] buildah bud of {REPO_ROOT / 'Dockerfile'} (PYTHON_IMAGE={base_name}); ~30 s")
        revision = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                                  text=True).stdout.strip() or "unknown"
        _run(self.buildah("bud", "--isolation", "chroot", "--pull=never", "--layers=false",
                          "--build-arg", f"PYTHON_IMAGE={base_name}", "--build-arg", f"REVISION={revision}",
                          "-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
                          "-f", str(REPO_ROOT / "Dockerfile"), "-t", OPERATOR_IMAGE, str(REPO_ROOT)),
             "buildah bud of the project's Dockerfile", self.log)

    def emulator(self, operator: Image) -> Image:
        key = _hash([operator.archive.name, *_tree_digest(REPO_ROOT, EMULATOR_INPUTS)])
        archive = self.dir / f"es-rollup-emulator-{key}.tar"
        with self._locked():
            return self._cached_or(EMULATOR_IMAGE, archive, lambda: self._build_emulator(operator))

    def _build_emulator(self, operator: Image) -> None:
        self.progress("[images] es-rollup-emulator: the operator image + emulator/es_rollup_emulator; ~10 s")
        if not self._have_in_store(operator.name):
            _run(self.buildah("pull", f"oci-archive:{operator.archive}"), "buildah pull of the operator image", self.log)
        ctr = _run(self.buildah("from", "--pull=never", operator.name), "buildah from (operator)", self.log).strip().splitlines()[-1]
        try:
            _run(self.buildah("copy", "--chown", "0:0", ctr, str(REPO_ROOT / EMULATOR_INPUTS[0]), "/opt/emulator/es_rollup_emulator"),
                 "buildah copy emulator", self.log)
            _run(self.buildah("config", "--env", "PYTHONPATH=/opt/emulator", "--entrypoint",
                              '["/opt/venv/bin/python", "-m", "es_rollup_emulator"]', "--cmd", "", ctr), "buildah config", self.log)
            _run(self.buildah("commit", "--rm", ctr, EMULATOR_IMAGE), "buildah commit (emulator)", self.log)
        except Exception:
            subprocess.run(self.buildah("rm", ctr), capture_output=True)
            raise

    def _cached_or(self, name: str, archive: Path, build) -> Image:
        t0 = time.monotonic()
        if archive.exists():
            return Image(name, archive, False, time.monotonic() - t0)
        build()
        self._save(name, archive)
        if "python-base" not in name:  # only the base is needed in buildah's storage (FROM); vfs copies are big
            subprocess.run(self.buildah("rmi", name), capture_output=True)
        subprocess.run(self.buildah("rmi", "--prune"), capture_output=True)  # earlier builds' dangling images
        secs = time.monotonic() - t0
        self.progress(f"[images] built {name} in {secs:.0f}s -> {archive} ({archive.stat().st_size / 1e6:.0f} MB)")
        return Image(name, archive, True, secs)

    def all(self) -> dict[str, Image]:
        base = self.base()
        operator = self.operator(base)
        return {"base": base, "pause": self.pause(), "operator": operator, "emulator": self.emulator(operator)}


def _hash(parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _tree_digest(root: Path, inputs) -> list[str]:
    out = []
    for rel in inputs:
        p = root / rel
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file()) if p.exists() else []
        for f in files:
            if "__pycache__" in f.parts or f.suffix in (".pyc", ".pyo") or ".egg-info" in str(f):
                continue
            out.append(f"{f.relative_to(root)}:{hashlib.sha256(f.read_bytes()).hexdigest()}")
    return out


def main() -> int:
    t0 = time.monotonic()
    for kind, img in Builder().all().items():
        print(f"[images] {kind}: {img.name} {'built' if img.built else 'cached'} in {img.seconds:.1f}s -> {img.archive}")
    print(f"[images] all in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
