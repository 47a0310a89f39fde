"""The benchmark itself: set up, then five scenarios, each yielding a dict of figures.

Everything real except Elasticsearch: a kube-apiserver + etcd (devtools/harness), ``manifests/``
applied with kubectl, the operator as its own process with its ServiceAccount's identity (so
RBAC is the manifests'), and N emulated Elasticsearch endpoints in another process.

Layout of the objects (namespace ``bench``):

* connections ``es-00`` .. ``es-NN``, one per endpoint, ``syncInterval`` = ``--sync-interval``;
* jobs ``eKK-IIII`` spread round-robin over them, desired ``started``, and on the endpoint
  ``indexing`` with ``stop_delay = L`` (a stop keeps them ``stopping`` exactly L seconds) and a
  page that never ends (stats never change by themselves, so converged jobs need no writes);
* one more endpoint and connection ``solo`` (``syncInterval: 1h``) with one job, for a single
  stop measured alone: every request on that endpoint during its stop is the stop's own.

The memory series runs afterwards in namespace ``mem`` (stopped jobs on the same endpoints).
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import endpoints as eps_mod
from .endpoints import count_kinds
from .kubeops import Writers, create_connection, create_jobs, ensure_namespace, flip
from .procstat import REPO_ROOT, by_label, cpu_seconds, delta, parse_metrics, rss_mib, thread_cpu_seconds
from .watcher import Watch

NS, MEM_NS = "bench", "mem"
WRITES = "rollup_operator_kubernetes_writes_total"
PASSES = "rollup_operator_reconcile_passes_total"
STOP_TIMEOUTS = "rollup_operator_stop_timeouts_total"
NEVER = 1e6  # a page that never ends within a benchmark


def log(msg: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    if not s:
        return float("nan")
    return s[max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))]


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares line: (slope, intercept)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return slope, my - slope * mx


@dataclass
class Params:
    jobs: int = 1000
    endpoints: int = 10
    stop_latency: float = 2.0
    steady_seconds: float = 300.0
    sync_interval: float = 10.0
    memory_sizes: tuple[int, ...] = (100, 1000, 3000)
    memory_settle: float = 12.0
    emulators: str = "process"
    writer_threads: int = 32
    operator_args: list[str] = field(default_factory=list)
    quick: bool = False
    skip: tuple[str, ...] = ()
    raw: bool = False  # keep per-job timings of the mass stop in the results
    profile_dir: str | None = None  # py-spy the operator during the mass stop (collapsed stacks)
    #: "runtime": the operator runs from a venv with the runtime dependencies only, as in the image
    #: (runtime_env.py); "dev": from this interpreter (the development venv, test tools included).
    operator_env: str = "runtime"
    operator_source: str | None = None  # the operator package's source root (default: operator/ of this checkout)
    #: "opensearch": the endpoints speak the OpenSearch dialect (emulator, in this process); the stop is
    #: the operator's own wait (explain lag + settle), so L does not apply there.
    engine: str = "elasticsearch"


class Operator:
    """``rollup-operator run`` as a separate process (tests/integration/support.OperatorProcess),
    at the production log level, with /proc and /metrics readings."""

    def __init__(self, kubeconfig: str, namespace: str, extra: list[str], python: str | None = None,
                 env: dict[str, str] | None = None):
        from tests.integration.support import OperatorProcess

        self.p = OperatorProcess(kubeconfig, [namespace], ["--log-level", "INFO", *extra], env=env, python=python)
        self.t_spawn = 0.0

    def start(self) -> "Operator":
        self.t_spawn = time.monotonic()
        self.p.start(wait_ready=False)
        return self

    @property
    def pid(self) -> int:
        return self.p.proc.pid

    def wait_http(self, timeout: float = 60) -> float:
        self.p.wait_ready(timeout)
        return time.monotonic()

    def metrics(self) -> dict:
        return parse_metrics(self.p.metrics())

    def writes(self) -> dict[str, float]:
        return by_label(self.metrics(), WRITES, "kind")

    def passes(self) -> float:
        return sum(by_label(self.metrics(), PASSES, "result").values())

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> dict[str, float]:
        return rss_mib(self.pid)

    def stop(self) -> None:
        self.p.stop(30)

    @property
    def log_file(self) -> str:
        return str(self.p.log_file)


class Bench:
    def __init__(self, params: Params):
        self.p = params
        self.results: dict[str, Any] = {}
        self.api = None
        self.eps: eps_mod.Endpoints | None = None
        self.watch: Watch | None = None
        self.writers: Writers | None = None
        self.op: Operator | None = None
        self.names: list[str] = []  # the J jobs in NS
        self.solo = "solo-0000"

    # --- setup ----------------------------------------------------------------------------------

    def setup(self) -> None:
        from devtools.harness.apiserver import APIServer, api_client, ensure_built

        p = self.p
        t0 = time.monotonic()
        self.api = APIServer(binary=ensure_built(progress=log), progress=log).start()
        log(f"kube-apiserver ready at {self.api.url} in {self.api.start_seconds:.1f}s")
        self.kubectl("apply", "--server-side", "-k", str(REPO_ROOT / "manifests"))
        self.kubectl("wait", "--for=condition=Established", "crd/rollupjobs.rollup.esops.dev",
                     "crd/elasticsearchconnections.rollup.esops.dev", "--timeout=60s")
        self.admin = api_client(self.api.admin_kubeconfig)
        self.eps = eps_mod.start(p.emulators, p.endpoints + 1, engine=p.engine)
        log(f"{p.endpoints}+1 emulated {p.engine} endpoints ({'inproc' if p.engine == 'opensearch' else p.emulators})")
        ensure_namespace(self.admin, NS)
        sync = f"{p.sync_interval:g}s"
        for k in range(p.endpoints):
            create_connection(self.admin, NS, f"es-{k:02d}", self.eps.urls[k], sync)
        create_connection(self.admin, NS, "solo", self.eps.urls[p.endpoints], "1h")
        timing = {"stop_delay": p.stop_latency, "pages_per_run": None, "page_duration": NEVER}
        jobs = []
        for k in range(p.endpoints):
            n = p.jobs // p.endpoints + (1 if k < p.jobs % p.endpoints else 0)
            for jid in self.eps.seed(k, f"e{k:02d}-", n, "indexing", **timing):
                jobs.append((jid, f"es-{k:02d}", "started"))
        self.eps.seed(p.endpoints, "solo-", 1, "indexing", **timing)
        jobs.append((self.solo, "solo", "started"))
        self.names = [j[0] for j in jobs if j[0] != self.solo]
        self.watch = Watch(self.api.admin_kubeconfig, str(REPO_ROOT))
        self.writers = Writers(self.api.admin_kubeconfig, p.writer_threads)
        secs = create_jobs(self.writers, NS, jobs)
        self.watch.wait(lambda w: w.count(NS) == len(jobs), 60, "the watcher to see every job")
        log(f"created {len(jobs)} RollupJobs in {secs:.1f}s ({len(jobs) / secs:.0f}/s)")
        self.results["setup"] = {"seconds": round(time.monotonic() - t0, 1), "create_jobs_seconds": round(secs, 2),
                                 "create_jobs_per_second": round(len(jobs) / secs)}

    def kubectl(self, *args: str) -> str:
        cmd = ["kubectl", "--kubeconfig", self.api.admin_kubeconfig, *args]
        r = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {r.stderr}")
        return r.stdout

    def close(self) -> None:
        for what in (self.op, self.writers, self.watch, self.eps):
            if what is not None:
                try:
                    what.stop() if isinstance(what, Operator) else what.close()
                except Exception as e:  # noqa: BLE001
                    log(f"closing {type(what).__name__}: {e}")
        if self.api is not None:
            self.api.stop()

    # --- helpers --------------------------------------------------------------------------------

    def main_endpoints(self) -> range:
        return range(self.p.endpoints)

    def es_counts(self, ks) -> dict[str, int]:
        return count_kinds(self.eps.requests_of(ks))

    def procs_cpu(self) -> dict[str, float]:
        out = {"operator": self.op.cpu() if self.op else 0.0, "apiserver": cpu_seconds(self.api.pid),
               "bench": cpu_seconds(os.getpid()), "watcher": cpu_seconds(self.watch.pid)}
        if self.eps.pid:
            out["emulators"] = cpu_seconds(self.eps.pid)
        return out

    def _operator_python(self) -> tuple[str | None, dict[str, str]]:
        """(python, environment) the operator runs with (see Params.operator_env)."""
        env = {"PYTHONPATH": self.p.operator_source} if self.p.operator_source else {}
        if self.p.operator_env == "dev":
            return None, env
        from .runtime_env import operator_env, runtime_python

        return runtime_python(log), {**operator_env(), **env}

    def start_operator(self, ns: str = NS) -> Operator:
        return Operator(self.api.operator_kubeconfig, ns, self.p.operator_args, *self._operator_python()).start()

    def wait_passes(self, op: Operator, n: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if op.passes() >= n:
                    return time.monotonic()
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the operator did not reconcile {n} jobs within {timeout}s; log {op.log_file}")
            if not op.p.alive():
                raise RuntimeError(f"the operator exited; log {op.log_file}")
            time.sleep(0.05)

    def profile(self, op: Operator, name: str):
        """py-spy (if installed and --profile-dir given) on the operator until SIGINT."""
        if not self.p.profile_dir:
            return None
        import shutil

        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        out = Path(self.p.profile_dir) / f"{name}.collapsed"
        out.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen([spy, "record", "--pid", str(op.pid), "--format", "raw", "--rate", "200",
                                 "--output", str(out), "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        log(f"profiling the operator into {out}")
        return proc

    # --- 1. cold start ---------------------------------------------------------------------------

    def cold_start(self) -> None:
        p, total = self.p, len(self.names) + 1
        out: dict[str, Any] = {}
        for run in ("first", "second"):
            self.eps.clear_all()
            op = self.op = self.start_operator()
            t_http = op.wait_http(120) - op.t_spawn
            if run == "first":
                t_done = self.watch.wait(lambda w: w.ready_count(NS) == total, 600, "every job Ready") - op.t_spawn
            else:
                # statuses are Ready already: "converged" is when the operator has checked every job
                t_done = self.wait_passes(op, total, 600) - op.t_spawn
            time.sleep(2.0)  # late writes, if any
            writes = op.writes()
            es = self.es_counts(self.main_endpoints())
            solo = self.es_counts([p.endpoints])
            rss = op.rss()
            out[run] = {
                "seconds_to_http_ready": round(t_http, 2),
                "seconds_to_converged": round(t_done, 2),
                "converged_means": "every job Ready=True at its generation (watch)" if run == "first"
                else "the operator reconciled every job (reconcile_passes_total >= jobs); all were Ready already",
                "es_requests": es,
                "es_requests_solo_endpoint": solo,
                "es_reads_per_connection": round(es.get("read_all", 0) / p.endpoints, 2),
                "k8s_writes": writes,
                "k8s_writes_total": sum(writes.values()),
                "operator_rss_mib": round(rss["rss"], 1),
                "operator_hwm_mib": round(rss["hwm"], 1),
                "operator_cpu_seconds": round(op.cpu(), 2),
            }
            log(f"cold start ({run}): converged in {t_done:.1f}s; ES {es}; writes {writes}")
            if run == "first":
                op.stop()
        self.results["cold_start"] = out

    # --- 4a. one stop alone ----------------------------------------------------------------------

    def single_stop(self) -> None:
        op, k = self.op, self.p.endpoints
        self.eps.clear(k)
        w0, c0 = op.writes(), op.cpu()
        f = flip(self.writers, NS, [self.solo], "stopped")[self.solo]
        t_ready = self.watch.wait(lambda w: (NS, self.solo, f[2]) in w.first_ready, 120, "the solo job Ready")
        t_ready = self.watch.first_ready[(NS, self.solo, f[2])]
        time.sleep(1.5)
        writes = delta(op.writes(), w0)
        es = self.es_counts([k])
        self.results["single_stop"] = {
            "seconds_to_ready": round(t_ready - f[0], 3),
            "es_requests": es,
            "k8s_writes": writes,
            "k8s_writes_total": sum(writes.values()),
            "operator_cpu_seconds": round(op.cpu() - c0, 3),
        }
        log(f"single stop: Ready after {t_ready - f[0]:.2f}s; ES {es}; writes {writes}")

    # --- 2. mass stop ----------------------------------------------------------------------------

    def mass_stop(self) -> None:
        p, op = self.p, self.op
        J = len(self.names)
        states = {s for k in self.main_endpoints() for s in self.eps.states(k).values()}
        running = "started" if p.engine == "opensearch" else "indexing"
        assert states == {running}, f"jobs are not all {running} before the mass stop: {states}"
        self.eps.clear_all()
        spy = self.profile(op, "mass_stop")
        m0, w0, cpu0, th0 = op.metrics(), op.writes(), self.procs_cpu(), thread_cpu_seconds(op.pid)
        t0 = time.monotonic()
        flips = flip(self.writers, NS, self.names, "stopped")
        t_flipped = time.monotonic()
        log(f"mass stop: {J} flips sent in {t_flipped - t0:.2f}s")
        want = {(NS, n, f[2]) for n, f in flips.items()}
        self.watch.wait(lambda w: want <= w.first_ready.keys(), p.stop_latency + 600, "every job Ready at its new generation")
        t_all = max(self.watch.first_ready[k] for k in want)
        time.sleep(2.0)
        m1, cpu1, th1 = op.metrics(), self.procs_cpu(), thread_cpu_seconds(op.pid)
        if spy is not None:
            spy.send_signal(2)
            spy.wait(60)
        # Events are posted after the statuses they describe and have fewer slots (status_writer.py),
        # so under a backlog they land after the last Ready: wait for them, and say how long it took.
        ev_want = 2 * J  # Stopping and Stopped, one each per job
        ev0 = w0.get("event", 0.0)
        t_ev = time.monotonic()
        while op.writes().get("event", 0.0) - ev0 < ev_want and time.monotonic() - t_ev < 60:
            time.sleep(0.25)
        events_after_ready = round(time.monotonic() - t_all, 2)
        breakdown = self.stop_breakdown(flips)
        lat = [self.watch.first_ready[(NS, n, f[2])] - f[0] for n, f in flips.items()]
        lat_ack = [self.watch.first_ready[(NS, n, f[2])] - f[1] for n, f in flips.items()]
        writes = delta(by_label(m1, WRITES, "kind"), w0)
        es = self.es_counts(self.main_endpoints())
        window = time.monotonic() - t0
        timeouts = sum(m1.get(STOP_TIMEOUTS, {}).values()) - sum(m0.get(STOP_TIMEOUTS, {}).values())
        L = p.stop_latency
        res = {
            "jobs": J,
            "stop_latency_L": L,
            "flip_seconds": round(t_flipped - t0, 2),
            "flip_request_ms_p50": round(1000 * statistics.median(f[1] - f[0] for f in flips.values()), 1),
            "seconds_first_flip_to_all_ready": round(t_all - t0, 2),
            "latency_p50": round(pct(lat, 50), 3),
            "latency_p95": round(pct(lat, 95), 3),
            "latency_p99": round(pct(lat, 99), 3),
            "latency_max": round(max(lat), 3),
            "latency_min": round(min(lat), 3),
            "latency_from_ack_p99": round(pct(lat_ack, 99), 3),
            "p99_over_L": round(pct(lat, 99) / L, 2),
            "target_p99_seconds": L + 2.0,
            "es_requests": es,
            "k8s_writes": writes,
            "k8s_writes_total": sum(writes.values()),
            "events_posted": op.writes().get("event", 0.0) - ev0,
            "events_all_posted_seconds_after_last_ready": events_after_ready,
            "stop_timeouts": timeouts,
            "window_seconds": round(window, 1),
            "periodic_reads_in_window": round(p.endpoints * window / p.sync_interval, 1),
            "cpu_seconds": {k: round(cpu1[k] - cpu0[k], 2) for k in cpu1},
            "operator_cpu_by_thread": {k: round(th1[k] - th0[k], 2) for k in th1},
            "operator_cpu_ms_per_job": round(1000 * (cpu1["operator"] - cpu0["operator"]) / J, 2),
            "operator_rss_mib": round(op.rss()["rss"], 1),
            "histogram_seconds": _histogram(lat),
            "breakdown": breakdown,
        }
        self.results["mass_stop"] = res
        log(f"mass stop: p50 {res['latency_p50']}s p95 {res['latency_p95']}s p99 {res['latency_p99']}s "
            f"max {res['latency_max']}s; ES {es}; writes {writes}; cpu {res['cpu_seconds']}")

    def stop_breakdown(self, flips: dict[str, tuple[float, float, int]]) -> dict[str, dict[str, float]]:
        """Where each job's flip-to-Ready time went, from the emulators' request logs (wall clock,
        converted) and the watch: p50/p99 of each leg."""
        offset = time.time() - time.monotonic()
        stops: dict[str, tuple[float, float]] = {}
        for r in self.eps.requests_of(self.main_endpoints()):
            if eps_mod.kind_of(r["method"], r["path"]) == "stop":
                jid = eps_mod.job_id_of(r["path"])
                t0 = r["timestamp"] - offset
                if jid not in stops or t0 < stops[jid][0]:
                    stops[jid] = (t0, t0 + r.get("duration", 0.0))
        legs: dict[str, list[float]] = {"flip_to_stopping_status_seen": [], "flip_to_stop_sent": [],
                                       "stop_call": [], "stop_answered_to_ready_seen": []}
        t_first = min(f[0] for f in flips.values())
        raw = []
        for n, (t_flip, _ack, gen) in flips.items():
            ready = self.watch.first_ready.get((NS, n, gen))
            stopping = self.watch.first_reason.get((NS, n, gen, "Stopping"))
            if self.p.raw:
                rel = [None if t is None else round(t - t_first, 3) for t in (t_flip, _ack, *stops.get(n, (None, None)), stopping, ready)]
                raw.append([n, *rel])
            if stopping is not None:
                legs["flip_to_stopping_status_seen"].append(stopping - t_flip)
            if n in stops:
                s0, s1 = stops[n]
                legs["flip_to_stop_sent"].append(s0 - t_flip)
                legs["stop_call"].append(s1 - s0)
                if ready is not None:
                    legs["stop_answered_to_ready_seen"].append(ready - s1)
        out: dict[str, Any] = {k: {"p50": round(pct(v, 50), 3), "p99": round(pct(v, 99), 3), "n": len(v)} for k, v in legs.items() if v}
        if raw:
            out["per_job"] = {"columns": ["job", "flip_sent", "flip_acked", "stop_sent", "stop_answered", "stopping_seen", "ready_seen"],
                              "rows": sorted(raw, key=lambda x: x[1])}
        return out

    # --- 3. steady state -------------------------------------------------------------------------

    def steady(self) -> None:
        p, op = self.p, self.op
        time.sleep(min(p.sync_interval, 10))  # let the last confirmations settle
        self.eps.clear_all()
        w0, cpu0, t0 = op.writes(), self.procs_cpu(), time.monotonic()
        time.sleep(p.steady_seconds)
        secs = time.monotonic() - t0
        w1, cpu1 = op.writes(), self.procs_cpu()
        es = self.es_counts(self.main_endpoints())
        writes = delta(w1, w0)
        periods = secs / p.sync_interval
        reads = es.get("read_all", 0)
        self.results["steady"] = {
            "seconds": round(secs, 1),
            "sync_interval": p.sync_interval,
            "periods": round(periods, 2),
            "es_requests": es,
            "es_reads_per_period": round(reads / periods, 2),
            "es_requests_per_period": round(sum(es.values()) / periods, 2),
            "target_reads_per_period": p.endpoints,
            "k8s_writes": writes,
            "k8s_writes_per_period": round(sum(writes.values()) / periods, 2),
            "operator_cpu_seconds": round(cpu1["operator"] - cpu0["operator"], 2),
            "operator_cpu_percent": round(100 * (cpu1["operator"] - cpu0["operator"]) / secs, 2),
            "cpu_seconds": {k: round(cpu1[k] - cpu0[k], 2) for k in cpu1},
            "operator_rss_mib": round(op.rss()["rss"], 1),
        }
        log(f"steady: {reads} reads in {secs:.0f}s ({reads / periods:.2f}/period), writes {writes}, "
            f"operator cpu {cpu1['operator'] - cpu0['operator']:.2f}s")

    # --- 5. memory -------------------------------------------------------------------------------

    def memory(self) -> None:
        p = self.p
        if self.op is not None:
            self.op.stop()
            self.op = None
        ensure_namespace(self.admin, MEM_NS)
        for k in range(p.endpoints):
            create_connection(self.admin, MEM_NS, f"es-{k:02d}", self.eps.urls[k], f"{p.sync_interval:g}s")
        have, points = 0, []
        for step, size in enumerate(sorted(p.memory_sizes)):
            add = size - have
            jobs = []
            for k in range(p.endpoints):
                n = add // p.endpoints + (1 if k < add % p.endpoints else 0)
                for jid in self.eps.seed(k, f"m{step}-{k:02d}-", n, "stopped"):
                    jobs.append((jid, f"es-{k:02d}", "stopped"))
            create_jobs(self.writers, MEM_NS, jobs)
            have = size
            self.watch.wait(lambda w: w.count(MEM_NS) == size, 120, f"{size} jobs in {MEM_NS}")
            pt: dict[str, Any] = {"jobs": size}
            # first start: every new job gets its status written (a burst of writes and events);
            # second start: all are Ready, nothing to write -- what holding J jobs costs at rest
            for run in ("first", "second"):
                self.eps.clear_all()
                op = self.op = self.start_operator(MEM_NS)
                if run == "first":
                    t_conv = self.watch.wait(lambda w: w.ready_count(MEM_NS) == size, 900, f"{size} jobs Ready")
                    t_conv = max(t_conv, self.wait_passes(op, size, 900))
                else:
                    t_conv = self.wait_passes(op, size, 900)
                time.sleep(p.memory_settle)
                samples = []
                for _ in range(3):
                    samples.append(op.rss())
                    time.sleep(0.5)
                pt[run] = {"rss_mib": round(statistics.median(s["rss"] for s in samples), 1),
                           "hwm_mib": round(max(s["hwm"] for s in samples), 1),
                           "seconds_to_converged": round(t_conv - op.t_spawn, 1),
                           "k8s_writes_total": sum(op.writes().values()),
                           "es_requests": self.es_counts(self.main_endpoints()),
                           "operator_cpu_seconds": round(op.cpu(), 2)}
                log(f"memory: {size} jobs, {run} start -> RSS {pt[run]['rss_mib']} MiB (peak {pt[run]['hwm_mib']}), "
                    f"converged in {pt[run]['seconds_to_converged']}s, ES {pt[run]['es_requests']}")
                op.stop()
                self.op = None
            points.append(pt)
        xs = [q["jobs"] for q in points]
        slope, icpt = fit(xs, [q["first"]["rss_mib"] for q in points])
        rslope, ricpt = fit(xs, [q["second"]["rss_mib"] for q in points])
        self.results["memory"] = {
            "points": points,
            "per_job_kib": round(slope * 1024, 1),
            "base_mib": round(icpt, 1),
            "per_job_kib_at_rest": round(rslope * 1024, 1),
            "base_mib_at_rest": round(ricpt, 1),
            "rss_at_1000_mib_fit": round(icpt + 1000 * slope, 1),
            "measured": "VmRSS after convergence + settle; 'first' = first start (writes every status), "
                        "'second' = restart with all Ready (no writes); per-job = slope of a least-squares line",
        }
        log(f"memory: {slope * 1024:.1f} KiB/job + {icpt:.1f} MiB after a first start; "
            f"{rslope * 1024:.1f} KiB/job + {ricpt:.1f} MiB at rest")

    # --- 4. per transition -----------------------------------------------------------------------

    def per_transition(self) -> None:
        ms, ss = self.results.get("mass_stop"), self.results.get("single_stop")
        out: dict[str, Any] = {}
        if ms:
            J = ms["jobs"]
            periodic = ms["periodic_reads_in_window"]
            out["mass_stop_per_job"] = {
                "stop_calls": round(ms["es_requests"].get("stop", 0) / J, 3),
                "stop_calls_waiting": round(ms["es_requests"].get("stop_waiting", 0) / J, 3),
                "reads_all": round(ms["es_requests"].get("read_all", 0) / J, 3),
                "reads_all_beyond_periodic": round(max(0.0, ms["es_requests"].get("read_all", 0) - periodic) / J, 3),
                "k8s_writes": {k: round(v / J, 3) for k, v in ms["k8s_writes"].items()},
                "k8s_writes_total": round(ms["k8s_writes_total"] / J, 3),
                "stop_timeouts": ms["stop_timeouts"],
            }
        if ss:
            out["single_stop"] = {
                "stop_calls": ss["es_requests"].get("stop", 0),
                "reads_all": ss["es_requests"].get("read_all", 0),
                "other_es_requests": {k: v for k, v in ss["es_requests"].items()
                                      if k not in ("stop", "read_all") and not k.startswith("stop_")},
                "k8s_writes": ss["k8s_writes"],
                "k8s_writes_total": ss["k8s_writes_total"],
            }
        self.results["per_transition"] = out

    # --- all ---------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        p = self.p
        self.results["params"] = {
            "jobs": p.jobs, "endpoints": p.endpoints, "stop_latency": p.stop_latency,
            "steady_seconds": p.steady_seconds, "sync_interval": p.sync_interval,
            "memory_sizes": list(p.memory_sizes), "emulators": p.emulators, "quick": p.quick, "engine": p.engine,
            "operator_args": p.operator_args, "operator_env": p.operator_env, "operator_source": p.operator_source,
            "operator_defaults": "poll-interval 1s, coalesce-window 0.05s, kube-writers 16, log-level INFO; "
                                 "connections maxConcurrentRequests 64 (32 waiting stops); stop.timeout 30s",
        }
        self.results["environment"] = {
            "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "mem_total_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            **_git(),
        }
        t0 = time.monotonic()
        try:
            self.setup()
            self.cold_start()
            if "stop" not in p.skip:
                self.single_stop()
                self.mass_stop()
            if "steady" not in p.skip:
                self.steady()
            self.per_transition()
            if "memory" not in p.skip:
                self.memory()
            self.results["operator_log"] = self.op.log_file if self.op else None
        finally:
            self.close()
        self.results["total_seconds"] = round(time.monotonic() - t0, 1)
        self.results["targets"] = targets(self.results)
        return self.results


def _git() -> dict[str, Any]:
    """The commit measured, and whether operator/ had uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "operator/"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
        return {"git_head": head, "operator_dirty": bool(dirty)}
    except OSError:
        return {}


def _histogram(lat: list[float]) -> dict[str, int]:
    edges = [1, 2, 2.5, 3, 3.5, 4, 5, 6, 8, 10, 15, 20, 30, 60, 120]
    out: dict[str, int] = {}
    prev = 0.0
    for e in edges:
        out[f"<={e:g}"] = sum(1 for x in lat if prev < x <= e) if prev else sum(1 for x in lat if x <= e)
        prev = e
    out[f">{edges[-1]:g}"] = sum(1 for x in lat if x > edges[-1])
    return {k: v for k, v in out.items() if v}


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue with the measured value and whether it was met."""
    p = r["params"]
    N, L = p["endpoints"], p["stop_latency"]
    rows: list[dict[str, Any]] = []

    def add(name: str, value: Any, target: str, ok: bool | None) -> None:
        rows.append({"figure": name, "value": value, "target": target, "met": ok})

    cs = (r.get("cold_start") or {}).get("second")
    if cs:
        es = cs["es_requests"]
        add("cold start: stop/start calls", es.get("stop", 0) + es.get("start", 0), "0", es.get("stop", 0) + es.get("start", 0) == 0)
        add("cold start: _all reads", es.get("read_all", 0), f"O(N): <= 3N = {3 * N}", es.get("read_all", 0) <= 3 * N)
        add("cold start: K8s writes", cs["k8s_writes_total"], "0", cs["k8s_writes_total"] == 0)
    ms = r.get("mass_stop")
    if ms:
        add("mass stop: p99 latency (s)", ms["latency_p99"], f"<= L + 2 = {L + 2:g}", ms["latency_p99"] <= L + 2)
        add("mass stop: p99 / L", ms["p99_over_L"], f"<= {(L + 2) / L:.2f}", ms["latency_p99"] <= L + 2)
    pt = r.get("per_transition") or {}
    mpj = pt.get("mass_stop_per_job")
    if mpj:
        add("mass stop: stop calls per job", mpj["stop_calls"], "<= 1", mpj["stop_calls"] <= 1.0)
        add("mass stop: K8s writes per job", mpj["k8s_writes_total"], "small fixed (4)", mpj["k8s_writes_total"] <= 4.0)
    so = pt.get("single_stop")
    if so:
        add("single stop: stop calls", so["stop_calls"], "1", so["stop_calls"] == 1)
        add("single stop: confirming _all reads", so["reads_all"], "<= 1", so["reads_all"] <= 1)
        add("single stop: K8s writes", so["k8s_writes_total"], "small fixed (4)", so["k8s_writes_total"] <= 4)
    st = r.get("steady")
    if st:
        add("steady: _all reads per sync period", st["es_reads_per_period"], f"N = {N}",
            0.75 * N <= st["es_reads_per_period"] <= 1.5 * N)
        reads = ("read_all", "explain")  # on OpenSearch a read of all jobs is the list and their _explain
        add("steady: other ES requests", sum(v for k, v in st["es_requests"].items() if k not in reads), "0",
            all(k in reads for k in st["es_requests"]))
        add("steady: K8s writes per period", st["k8s_writes_per_period"], "0", st["k8s_writes_per_period"] == 0)
        add("steady: operator CPU (s)", st["operator_cpu_seconds"], "(report)", None)
    mem = r.get("memory")
    if mem:
        at = {q["jobs"]: max(q["first"]["rss_mib"], q["second"]["rss_mib"]) for q in mem["points"]}
        v = at.get(1000, mem["rss_at_1000_mib_fit"])
        if ms and r["params"]["jobs"] == 1000:
            # the main run's operator after its mass stop and steady window, the busiest it gets
            v = max(v, ms["operator_rss_mib"], (r.get("steady") or {}).get("operator_rss_mib", 0))
        add("memory: RSS at 1000 jobs (MiB)" + ("" if 1000 in at else ", from the fit"), v, "< 200", v < 200)
        add("memory: per job (KiB)", mem["per_job_kib"], "(report)", None)
    return rows


def table(r: dict[str, Any]) -> str:
    """The results as a Markdown table (figures), then the targets."""
    p = r["params"]
    lines = [f"J={p['jobs']} jobs, N={p['endpoints']} endpoints, L={p['stop_latency']:g}s, "
             f"syncInterval={p['sync_interval']:g}s, steady {p['steady_seconds']:g}s, emulators: {p['emulators']}"
             + (" (OpenSearch dialect, inproc)" if p.get("engine") == "opensearch" else ""), ""]
    rows: list[tuple[str, str]] = []

    def fmt(d: dict) -> str:
        return ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in d.items()) or "none"

    cs = r.get("cold_start") or {}
    for run in ("first", "second"):
        c = cs.get(run)
        if c:
            label = "cold start, first run (no status yet)" if run == "first" else "cold start, second run (all Ready)"
            rows += [
                (f"{label}: time to converged", f"{c['seconds_to_converged']:.2f} s (HTTP ready {c['seconds_to_http_ready']:.2f} s)"),
                (f"{label}: ES requests", fmt(c["es_requests"])),
                (f"{label}: K8s writes", fmt(c["k8s_writes"])),
            ]
    ss = r.get("single_stop")
    if ss:
        rows += [("single stop alone: flip to Ready", f"{ss['seconds_to_ready']:.2f} s"),
                 ("single stop alone: ES requests", fmt(ss["es_requests"])),
                 ("single stop alone: K8s writes", fmt(ss["k8s_writes"]))]
    ms = r.get("mass_stop")
    if ms:
        rows += [
            ("mass stop: flips sent in", f"{ms['flip_seconds']:.2f} s (median request {ms['flip_request_ms_p50']:.0f} ms)"),
            ("mass stop: flip to Ready p50 / p95 / p99 / max",
             f"{ms['latency_p50']:.2f} / {ms['latency_p95']:.2f} / {ms['latency_p99']:.2f} / {ms['latency_max']:.2f} s"),
            ("mass stop: p99 / L", f"{ms['p99_over_L']:.2f} (target p99 <= {ms['target_p99_seconds']:g} s)"),
            ("mass stop: first flip to last Ready", f"{ms['seconds_first_flip_to_all_ready']:.2f} s"),
            *[(f"mass stop leg: {k.replace('_', ' ')} p50 / p99", f"{v['p50']:.2f} / {v['p99']:.2f} s")
              for k, v in (ms.get("breakdown") or {}).items() if k != "per_job"],
            ("mass stop: ES requests", fmt(ms["es_requests"])),
            ("mass stop: K8s writes", fmt(ms["k8s_writes"])),
            ("mass stop: all Events posted (of 2 per job), after the last Ready",
             f"{ms['events_posted']:g} in {ms['events_all_posted_seconds_after_last_ready']:g} s"),
            ("mass stop: CPU seconds by process", fmt(ms["cpu_seconds"])),
            ("mass stop: operator CPU by thread (event loop / other threads)",
             f"{ms['operator_cpu_by_thread']['main']:g} / {ms['operator_cpu_by_thread']['threads']:g} s "
             f"({ms['operator_cpu_ms_per_job']:g} ms per job)") if "operator_cpu_by_thread" in ms else ("", ""),
        ]
    pt = r.get("per_transition") or {}
    if pt.get("mass_stop_per_job"):
        m = pt["mass_stop_per_job"]
        rows += [("per stop (mass / J): stop calls, _all reads (beyond periodic)",
                  f"{m['stop_calls']:g}, {m['reads_all']:g} ({m['reads_all_beyond_periodic']:g})"),
                 ("per stop (mass / J): K8s writes", fmt(m["k8s_writes"]))]
    st = r.get("steady")
    if st:
        rows += [
            ("steady: _all reads per sync period", f"{st['es_reads_per_period']:g} (N = {p['endpoints']}; {fmt(st['es_requests'])} in {st['seconds']:g} s)"),
            ("steady: K8s writes per period", f"{st['k8s_writes_per_period']:g}"),
            ("steady: operator CPU", f"{st['operator_cpu_seconds']:g} s in {st['seconds']:g} s ({st['operator_cpu_percent']:g}% of a core)"),
        ]
    main_rss = [(label, d["operator_rss_mib"]) for label, d in (
        ("cold start", (cs.get("second") or {})), ("mass stop", ms or {}), ("steady window", st or {})) if d.get("operator_rss_mib")]
    if main_rss:
        rows.append((f"memory: operator RSS in the main run (J={p['jobs']}) after", "; ".join(f"{a}: {b:g} MiB" for a, b in main_rss)))
    mem = r.get("memory")
    if mem:
        rows += [("memory: RSS after a first start, by jobs", "; ".join(f"{q['jobs']}: {q['first']['rss_mib']:g} MiB" for q in mem["points"])),
                 ("memory: RSS after a restart (at rest), by jobs", "; ".join(f"{q['jobs']}: {q['second']['rss_mib']:g} MiB" for q in mem["points"])),
                 ("memory: per job (linear fit), first start / at rest",
                  f"{mem['per_job_kib']:g} KiB + {mem['base_mib']:g} MiB / {mem['per_job_kib_at_rest']:g} KiB + {mem['base_mib_at_rest']:g} MiB"),
                 ("memory: cold-start _all reads by jobs (first / second start)",
                  "; ".join(f"{q['jobs']}: {q['first']['es_requests'].get('read_all', 0)} / {q['second']['es_requests'].get('read_all', 0)}" for q in mem["points"]))]
    rows = [row for row in rows if row[0]]
    w = max(len(a) for a, _ in rows) if rows else 10
    lines.append(f"| {'figure'.ljust(w)} | value |")
    lines.append(f"|{'-' * (w + 2)}|-------|")
    lines += [f"| {a.ljust(w)} | {b} |" for a, b in rows]
    lines += ["", "| target | measured | goal | met |", "|---|---|---|---|"]
    for t in r.get("targets", []):
        met = {True: "yes", False: "NO", None: "-"}[t["met"]]
        lines.append(f"| {t['figure']} | {t['value']} | {t['target']} | {met} |")
    return "\n".join(lines)


def write(results: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
