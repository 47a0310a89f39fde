"""Prebuild the Go binaries of the test harness (for CI and developers).

    python -m tests.harness.build            # all: kube-apiserver harness, kstatus, helm, promtool, promql, rbacagg, argolua
    python -m tests.harness.build apiserver  # only some of them

Prints progress every 30 s; binaries are cached (see tests/harness/gobuild.py), so a second
run returns at once. Exit code 0 on success, 1 on a build failure, 2 if Go is missing.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import apiserver, gotools, kstatus
from .gobuild import GoBuildError, GoToolchainMissing, cache_dir

TARGETS = {
    "apiserver": apiserver.ensure_built,
    "kstatus": kstatus.ensure_built,
    "helm": gotools.ensure_helm,
    "promtool": gotools.ensure_promtool,
    "promql": gotools.ensure_promql,
    "rbacagg": gotools.ensure_rbacagg,
    "argolua": gotools.ensure_argolua,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.harness.build", description=__doc__.splitlines()[0])
    ap.add_argument("targets", nargs="*", metavar="TARGET", help=f"one of {', '.join(TARGETS)} (default: all)")
    args = ap.parse_args(argv)
    targets = args.targets or list(TARGETS)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {unknown}; choose from {list(TARGETS)}")
    print(f"[harness] cache dir: {cache_dir()}", flush=True)
    for name in targets:
        t0 = time.monotonic()
        try:
            path = TARGETS[name](lambda m: print(m, flush=True))
        except GoToolchainMissing as e:
            print(f"[harness] cannot build {name}: {e}", file=sys.stderr)
            return 2
        except GoBuildError as e:
            print(f"[harness] {e}", file=sys.stderr)
            return 1
        print(f"[harness] {name}: {path} ({time.monotonic() - t0:.1f}s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
