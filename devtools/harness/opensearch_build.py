"""Build a real single-node OpenSearch 2.19.4 with its rollup plugins, cached by input hash.

Everything comes from Maven Central (through ``mvn``) plus the index-management plugin's source
tag 2.19.4.0 (``shared/opensearch/index-management-2.19.4.0-src.tar.gz``: the plugin that holds
rollups is not published on Maven Central), as ``shared/opensearch/setup-and-run.sh`` does:

1. index-management compiled from its Kotlin source with ``devtools/osnode/index-management.pom.xml``
   (kotlin-maven-plugin 1.8.21 + all-open; Gradle is not used: the upstream build needs plugins
   from outside Maven Central), with its runtime dependencies;
2. ``devtools/osnode/launcher/``: OpenSearch 2.19.4 and the modules netty4, analysis-common, painless,
   mustache from Maven Central and a small ``harness.HarnessNode`` main (``new Node(...).start()``);
3. the job-scheduler 2.19.4.0 plugin zip from Maven Central and the node's ``home/`` layout.

The result is ``<cache>/opensearch/<key>/`` (``lib/`` the launcher's classpath, ``home/`` plugins
and config), where the key hashes ``devtools/osnode/``, the source tarball and the Java and Maven
versions. Maven's own repository is ``<cache>/m2`` (~150 MB). Cold: ~2 min on 2 cores (most of it
the Kotlin compile); cached: 0 s. A file lock serialises concurrent builds.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tarfile
import threading
import time
import zipfile
from pathlib import Path

from .gobuild import DEVTOOLS_DIR, REPO_ROOT, Progress, cache_dir

OS_VERSION = "2.19.4"
PLUGIN_VERSION = "2.19.4.0"
SRC_DIR = DEVTOOLS_DIR / "osnode"
TARBALL = f"index-management-{PLUGIN_VERSION}-src.tar.gz"
JOB_SCHEDULER = f"org.opensearch.plugin:opensearch-job-scheduler:{PLUGIN_VERSION}:zip"
MAIN_CLASS = "harness.HarnessNode"


class OpenSearchToolchainMissing(RuntimeError):
    """No Java 17+ or no Maven on this machine (Debian: openjdk-17-jdk-headless maven)."""


class OpenSearchBuildError(RuntimeError):
    """A Maven step failed; the message carries the tail of its log."""


def find_source_tarball() -> Path:
    """``$ROLLUP_OPENSEARCH_SRC``, else ``shared/opensearch/<tarball>`` beside the repo or any of
    its parents (CI puts ``shared/`` beside its clone; a worktree sits deeper)."""
    env = os.environ.get("ROLLUP_OPENSEARCH_SRC")
    if env:
        return Path(env)
    for parent in [REPO_ROOT, *REPO_ROOT.parents]:
        cand = parent / "shared" / "opensearch" / TARBALL
        if cand.exists():
            return cand
    raise OpenSearchBuildError(f"{TARBALL} not found in shared/opensearch/ beside {REPO_ROOT} or its parents "
                               "(set ROLLUP_OPENSEARCH_SRC to its path)")


def toolchain() -> tuple[str, str]:
    """(java, mvn) paths, or OpenSearchToolchainMissing naming the Debian packages."""
    java, mvn = shutil.which("java"), shutil.which("mvn")
    if not java or not mvn:
        raise OpenSearchToolchainMissing(
            f"{'java' if not java else 'mvn'} not found: apt-get install openjdk-17-jdk-headless maven")
    return java, mvn


def _version_line(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr).strip() else ""


def input_key(java: str, mvn: str, tarball: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in SRC_DIR.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(SRC_DIR)).encode() + b"\0" + f.read_bytes() + b"\0")
    h.update(hashlib.sha256(tarball.read_bytes()).digest())
    h.update(_version_line([java, "-version"]).encode() + b"\0" + _version_line([mvn, "-v"]).encode())
    return h.hexdigest()[:16]


def ensure_built(progress: Progress | None = print) -> Path:
    """Return ``<cache>/opensearch/<key>`` (with ``lib/`` and ``home/``); build it if absent."""
    progress = progress or (lambda _m: None)
    java, mvn = toolchain()
    tarball = find_source_tarball()
    root = cache_dir() / "opensearch"
    root.mkdir(parents=True, exist_ok=True)
    target = root / input_key(java, mvn, tarball)
    if (target / "ok").exists():
        return target
    with open(cache_dir() / "opensearch.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("[harness] another process is building the OpenSearch node; waiting for its lock")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "ok").exists():
            return target
        work = target.with_name(target.name + ".tmp")
        shutil.rmtree(work, ignore_errors=True)
        t0 = time.monotonic()
        _build(mvn, tarball, work, progress)
        (work / "ok").write_text(f"built in {time.monotonic() - t0:.0f}s\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(work, target)
        for old in root.iterdir():  # keep only the current build (~80 MB)
            if old != target:
                shutil.rmtree(old, ignore_errors=True)
        progress(f"[harness] built the OpenSearch node in {time.monotonic() - t0:.0f}s -> {target}")
    return target


def _build(mvn: str, tarball: Path, work: Path, progress: Progress) -> None:
    m2 = cache_dir() / "m2"
    im, launcher, home = work / "imbuild", work / "launcher", work / "home"
    im.mkdir(parents=True)
    with tarfile.open(tarball) as tf:
        tf.extractall(im, filter="data")
    shutil.copy(SRC_DIR / "index-management.pom.xml", im / "pom.xml")
    shutil.copytree(SRC_DIR / "launcher", launcher)
    base = [mvn, "-B", "-q", f"-Dmaven.repo.local={m2}"]
    log = work / "build.log"
    _mvn(base + ["package", "-DskipTests"], im, log, "compile index-management (Kotlin, ~400 files)", progress)
    _mvn(base + ["dependency:copy-dependencies", "-DincludeScope=runtime", "-DoutputDirectory=target/bundle-deps"],
         im, log, "index-management runtime dependencies", progress)
    _mvn(base + ["package", "dependency:copy-dependencies", "-DincludeScope=runtime", "-DoutputDirectory=target/lib"],
         launcher, log, "launcher: OpenSearch and its modules", progress)
    _mvn(base + ["org.apache.maven.plugins:maven-dependency-plugin:3.6.1:get", "-Dtransitive=false",
                 f"-Dartifact={JOB_SCHEDULER}"], work, log, "job-scheduler plugin zip", progress)
    lib = work / "lib"
    shutil.move(str(launcher / "target" / "lib"), lib)
    shutil.copy(launcher / "target" / "harness-node-1.jar", lib)
    js_zip = m2 / "org/opensearch/plugin/opensearch-job-scheduler" / PLUGIN_VERSION / \
        f"opensearch-job-scheduler-{PLUGIN_VERSION}.zip"
    with zipfile.ZipFile(js_zip) as zf:
        zf.extractall(home / "plugins" / "opensearch-job-scheduler")
    imdir = home / "plugins" / "opensearch-index-management"
    imdir.mkdir(parents=True)
    for jar in [im / "target" / f"opensearch-index-management-{PLUGIN_VERSION}.jar",
                *(im / "target" / "bundle-deps").glob("*.jar"),
                im / "src" / "main" / "plugin-metadata" / "plugin-security.policy"]:
        shutil.copy(jar, imdir)
    shutil.copy(SRC_DIR / "plugin-descriptor.properties", imdir)
    (home / "config").mkdir()
    shutil.copy(SRC_DIR / "log4j2.properties", home / "config")
    shutil.rmtree(im)  # sources and classes: ~25 MB not needed to run
    shutil.rmtree(launcher)


def _mvn(cmd: list[str], cwd: Path, log_path: Path, what: str, progress: Progress, interval: float = 30.0) -> None:
    progress(f"[harness] opensearch: {what} (log {log_path})")
    t0 = time.monotonic()
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(cmd)}  (in {cwd})\n")
        log.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        done = threading.Event()

        def report() -> None:
            while not done.wait(interval):
                progress(f"[harness] still at {what}: {time.monotonic() - t0:.0f}s")

        threading.Thread(target=report, daemon=True).start()
        try:
            code = proc.wait()
        finally:
            done.set()
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
        raise OpenSearchBuildError(f"mvn failed (exit {code}) at {what} after {time.monotonic() - t0:.0f}s; "
                                   f"log {log_path}:\n{tail}")
