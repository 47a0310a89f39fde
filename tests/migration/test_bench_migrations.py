"""A hundred RollupMigrations at once (issue 22, "measured and reported"): 100 RollupJobs, each with
its own source and target data stream on one emulated 8.17 cluster, migrated together by one
operator process on the real API server. Prints the wall time of each phase (from the first
request of the step to the last migration reaching it) and the Elasticsearch calls per phase, by
API and per migration. Asserts only what does not depend on the machine: every migration reaches
every phase, and the calls per migration of the one-shot phases stay within a small bound.

    .venv/bin/python -m pytest tests/migration/test_bench_migrations.py -q -s   # marked slow
"""

from __future__ import annotations

import collections
import time

import pytest

from tests.integration.support import Cluster

from .support import FIXED_CONFIG, IV_MS, LEGACY_MAPPINGS, sensor_docs, window_start

pytestmark = [pytest.mark.apiserver, pytest.mark.slow]
N = 100


def _api(method: str, path: str) -> str:
    if path.startswith("/_rollup/job/_all"):
        return "GET _rollup/job/_all (job controller)"
    if path.startswith("/_rollup/job/"):
        return f"{method} _rollup/job/<id>" + (path.rsplit("/", 1)[-1] if path.endswith(("_start", "_stop")) else "")
    for key in ("_rollup_search", "_search", "_rollover", "_simulate", "_index_template", "_ilm/policy", "_data_stream"):
        if key in path:
            return f"{method} {key}"
    return f"{method} {'/<index>' if path.count('/') == 1 and path != '/' else path}"


def _count(cluster: Cluster, phase: str) -> int:
    items = cluster.custom.list_namespaced_custom_object("rollup.esops.dev", "v1alpha1", cluster.ns, "rollupmigrations")["items"]
    return sum(1 for o in items if (o.get("status") or {}).get("phase") == phase
               and (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"])


def _wait_all(cluster: Cluster, phase: str, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while (n := _count(cluster, phase)) < N:
        assert time.monotonic() < deadline, f"{n}/{N} migrations reached {phase} in {timeout}s"
        time.sleep(0.5)
    return time.monotonic()


def test_a_hundred_migrations_at_once(cluster, emulator, operator, migration_crd, monkeypatch):
    monkeypatch.setenv("ROLLUP_MIGRATION_POLL_SECONDS", "2")
    emu = emulator("8.17.0", auto_trigger=False, max_logged_requests=1_000_000)
    emu.seed_rollup_usage()
    cluster.connection("es", emu.url)
    for i in range(N):
        emu.create_index(f"metrics-s{i}-legacy", LEGACY_MAPPINGS)
        cfg = {**FIXED_CONFIG, "indexPattern": f"metrics-s{i}*", "rollupIndex": f"rollup-s{i}"}
        cluster.job(f"job-{i}", "started", config=cfg)
    op = operator()
    deadline = time.monotonic() + 120
    while sum(emu.job_state(f"job-{i}") == "started" for i in range(N)) < N:
        assert time.monotonic() < deadline
        time.sleep(0.5)

    marks: list[tuple[str, float, float]] = []
    emu.clear_requests()
    t0 = time.monotonic()
    for i in range(N):
        cluster._create("rollupmigrations", "RollupMigration", f"m-{i}",
                        {"jobRef": {"name": f"job-{i}"}, "targetDataStream": f"metrics-s{i}"})
    marks.append(("Planned (created -> all AwaitingApproval)", t0, _wait_all(cluster, "Planned", 120)))
    reqs = {"Planned": emu.requests()}
    emu.clear_requests()

    t0 = time.monotonic()
    for i in range(N):
        cluster.patch(f"m-{i}", {"spec": {"approved": True}}, plural="rollupmigrations")
    marks.append(("Provisioned (approved -> all Provisioned)", t0, _wait_all(cluster, "Provisioned", 180)))
    time.sleep(3)  # a poll of side by side, with nothing to see yet
    reqs["Provisioned"] = emu.requests()
    emu.clear_requests()

    t0 = time.monotonic()
    start = window_start()
    for i in range(N):
        emu.index_docs(f"metrics-s{i}", sensor_docs(start, buckets=2))
        assert emu.rollup_now(f"job-{i}") > 0
    assert sum(1 for s in emu.run_ilm("2d") if s["step"] == "downsample") == N
    marks.append(("Verified (ILM done -> all Verified)", t0, _wait_all(cluster, "Verified", 180)))
    reqs["Verified"] = emu.requests()
    emu.clear_requests()

    t0 = time.monotonic()
    for i in range(N):
        cluster.patch(f"m-{i}", {"spec": {"cutOver": {"approved": True}}}, plural="rollupmigrations")
    marks.append(("CutOver (approved -> all Ready, jobs stopped)", t0, _wait_all(cluster, "CutOver", 180)))
    reqs["CutOver"] = emu.requests()
    assert all(emu.job_state(f"job-{i}") == "stopped" for i in range(N))

    print(f"\n{N} RollupMigrations on one 8.17 emulator, one operator process (poll 2 s)\n")
    print("| phase | wall time | Elasticsearch calls | per migration |\n| --- | --- | --- | --- |")
    for (label, a, b), rs in zip(marks, reqs.values()):
        print(f"| {label} | {b - a:.1f} s | {len(rs)} | {len(rs) / N:.1f} |")
    for phase, rs in reqs.items():
        by = collections.Counter(_api(r.method, r.path) for r in rs)
        print(f"\n{phase}: " + ", ".join(f"{k} {v}" for k, v in by.most_common()))
    writes = [ln for ln in op.metrics().splitlines() if ln.startswith("rollup_operator_kubernetes_writes_total")]
    print("\n" + "\n".join(writes))
    # machine-independent bounds of the one-shot phases (the side-by-side poll depends on timing)
    assert len(reqs["Planned"]) <= 3 * N, collections.Counter(_api(r.method, r.path) for r in reqs["Planned"])
    prov = collections.Counter(_api(r.method, r.path) for r in reqs["Provisioned"])
    assert prov["PUT _ilm/policy"] == N and prov["PUT _index_template"] == N and prov["PUT _data_stream"] == N
    assert prov["POST _simulate"] == N
    assert IV_MS  # the data: 2 five-minute intervals x 2 hosts per migration
