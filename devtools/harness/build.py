"""Prebuild the Go binaries of the test harness (for CI and developers).

    python -m devtools.harness.build            # all: kube-apiserver harness, kstatus, helm, promtool, promql, rbacagg, argolua
    python -m devtools.harness.build apiserver  # only some of them
    python -m devtools.harness.build node images  # the single-node cluster's binary and images
    python -m devtools.harness.build opensearch   # the real OpenSearch node (Java 17 + Maven; opensearch_build.py)

Prints progress every 30 s; binaries are cached (see devtools/harness/gobuild.py), so a second
run returns at once. Exit code 0 on success, 1 on a build failure, 2 if Go is missing.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import apiserver, gotools, kstatus, node_build, opensearch_build
from .gobuild import GoBuildError, GoToolchainMissing, cache_dir
from .images import Builder, ImageBuildError

TARGETS = {
    "apiserver": apiserver.ensure_built,
    "kstatus": kstatus.ensure_built,
    "helm": gotools.ensure_helm,
    "promtool": gotools.ensure_promtool,
    "promql": gotools.ensure_promql,
    "rbacagg": gotools.ensure_rbacagg,
    "argolua": gotools.ensure_argolua,
}
# The single-node cluster's parts (devtools/harness/node.py); built only when named.
EXTRA = {"node": node_build.ensure_built,
         "images": lambda progress: " ".join(str(i.archive) for i in Builder(progress).all().values()),
         "opensearch": opensearch_build.ensure_built}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m devtools.harness.build", description=__doc__.splitlines()[0])
    ap.add_argument("targets", nargs="*", metavar="TARGET",
                    help=f"any of {', '.join([*TARGETS, *EXTRA])} (default: {', '.join(TARGETS)})")
    args = ap.parse_args(argv)
    targets = args.targets or list(TARGETS)
    unknown = [t for t in targets if t not in TARGETS and t not in EXTRA]
    if unknown:
        ap.error(f"unknown target(s) {unknown}; choose from {[*TARGETS, *EXTRA]}")
    print(f"[harness] cache dir: {cache_dir()}", flush=True)
    for name in targets:
        t0 = time.monotonic()
        try:
            path = {**TARGETS, **EXTRA}[name](lambda m: print(m, flush=True))
        except GoToolchainMissing as e:
            print(f"[harness] cannot build {name}: {e}", file=sys.stderr)
            return 2
        except opensearch_build.OpenSearchToolchainMissing as e:
            print(f"[harness] cannot build {name}: {e}", file=sys.stderr)
            return 2
        except (GoBuildError, ImageBuildError, opensearch_build.OpenSearchBuildError) as e:
            print(f"[harness] {e}", file=sys.stderr)
            return 1
        print(f"[harness] {name}: {path} ({time.monotonic() - t0:.1f}s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
