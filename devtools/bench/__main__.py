"""``python -m devtools.bench``: the scale benchmark (see devtools/bench/README.md).

    python -m devtools.bench                      # J=1000 jobs, N=10 endpoints, L=2s, 300 s steady window
    python -m devtools.bench --quick              # J=60, N=3, 20 s steady window, memory at 20/60/120
    python -m devtools.bench --jobs 3000 --endpoints 30 --steady-seconds 120 --out /tmp/r.json

Prints a table and writes the same figures as JSON (``--out``, default bench-results.json).
Exit status 0 even when a target is missed (the benchmark measures; tests/devtools/bench/test_bench_quick.py
asserts); 1 if the run itself failed.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from .run import Bench, Params, log, table, write


def parse(argv: list[str] | None = None) -> tuple[Params, str]:
    ap = argparse.ArgumentParser(prog="python -m devtools.bench", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="small and fast: J=60, N=3, sync 5s, steady 20s, memory at 20/60/120 (flags given explicitly still win)")
    ap.add_argument("--jobs", type=int, help="J, RollupJobs in the main namespace (default 1000; quick 60)")
    ap.add_argument("--endpoints", type=int, help="N, emulated Elasticsearch endpoints = connections (default 10; quick 3)")
    ap.add_argument("--stop-latency", type=float, default=2.0, help="L: seconds a stop of an indexing job stays 'stopping' (default 2)")
    ap.add_argument("--steady-seconds", type=float, help="length of the steady-state window (default 300; quick 20)")
    ap.add_argument("--sync-interval", type=float, help="spec.syncInterval of every connection, seconds (default 10; quick 5)")
    ap.add_argument("--memory-sizes", help="comma-separated job counts for the memory series (default 100,1000,3000; quick 20,60,120)")
    ap.add_argument("--emulators", choices=("process", "inproc"), default="process",
                    help="run the emulated endpoints in their own process (default) or on a loop thread of the benchmark")
    ap.add_argument("--writer-threads", type=int, default=32, help="threads creating and flipping RollupJobs (default 32)")
    ap.add_argument("--operator-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for `rollup-operator run` (repeatable), e.g. --operator-arg=--kube-writers=32")
    ap.add_argument("--operator-env", choices=("runtime", "dev"), default="runtime",
                    help="run the operator from a venv with the runtime dependencies only, as the image has them "
                         "(default; made once and cached), or from this interpreter's venv with the test tools (dev)")
    ap.add_argument("--operator-source", metavar="DIR",
                    help="the operator's source root to run (default: operator/ of this checkout), e.g. an older "
                         "worktree's operator/ to compare two versions under the same benchmark")
    ap.add_argument("--skip", action="append", default=[], choices=("stop", "steady", "memory"),
                    help="leave a scenario out (repeatable)")
    ap.add_argument("--engine", choices=("elasticsearch", "opensearch"), default="elasticsearch",
                    help="the endpoints' dialect: opensearch runs the emulator's OpenSearch dialect in this process "
                         "(the OpenSearch row; L does not apply: the stop is the operator's own wait)")
    ap.add_argument("--raw", action="store_true", help="keep every job's mass-stop timings in the JSON")
    ap.add_argument("--profile-dir", help="record the operator with py-spy during the mass stop (needs py-spy; investigation only)")
    ap.add_argument("--out", default="bench-results.json", help="where to write the JSON results (default bench-results.json)")
    a = ap.parse_args(argv)
    q = a.quick

    def pick(v, full, quick):
        return v if v is not None else (quick if q else full)

    sizes = a.memory_sizes or ("20,60,120" if q else "100,1000,3000")
    p = Params(
        jobs=pick(a.jobs, 1000, 60),
        endpoints=pick(a.endpoints, 10, 3),
        stop_latency=a.stop_latency,
        steady_seconds=pick(a.steady_seconds, 300.0, 20.0),
        sync_interval=pick(a.sync_interval, 10.0, 5.0),
        memory_sizes=tuple(int(s) for s in sizes.split(",") if s.strip()),
        memory_settle=3.0 if q else 12.0,
        emulators=a.emulators,
        writer_threads=a.writer_threads,
        operator_args=a.operator_arg,
        quick=q,
        skip=tuple(a.skip),
        profile_dir=a.profile_dir,
        raw=a.raw,
        operator_env=a.operator_env,
        operator_source=a.operator_source,
        engine=a.engine,
    )
    return p, a.out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    params, out = parse(argv)
    bench = Bench(params)
    t0 = time.time()
    try:
        results = bench.run()
    except Exception:
        log("the benchmark failed")
        raise
    results["command"] = "python -m devtools.bench " + " ".join(shlex.quote(a) for a in argv)
    results["started_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0))
    write(results, out)
    print(table(results))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
