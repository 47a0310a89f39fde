"""The synchronous front ends (EmulatorThread, EmulatorPool) and the standalone CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from elasticsearch import ApiError, Elasticsearch

from es_rollup_emulator import EmulatorPool, EmulatorThread
from es_rollup_emulator.__main__ import build_parser

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_emulator_thread_sync_api(loop_thread):
    with EmulatorThread(version="9.1.0", auto_trigger=False, page_duration=0.05, loop_thread=loop_thread) as emu:
        emu.add_job("j", state="started", pages_per_run=2)
        es = Elasticsearch(emu.url, max_retries=0)
        assert emu.trigger("j") is True
        assert emu.wait_for_state("j", "started", timeout=2)
        assert emu.job_stats("j")["pages_processed"] == 2
        with pytest.warns(Warning):
            assert es.rollup.stop_job(id="j", wait_for_completion=True)["stopped"] is True
        assert emu.job_state("j") == "stopped"
        emu.fail_next(1, status=429)
        with pytest.raises(ApiError) as exc:
            es.info()
        assert exc.value.meta.status == 429
        emu.go_down()
        with pytest.raises(Exception):
            es.info()
        emu.come_up()
        assert es.info()["version"]["number"] == "9.1.0"
        assert emu.count("POST", "/_rollup/job/*/_stop") == 1
        es.close()


def test_pool_shares_one_loop_and_serves_many_jobs():
    t0 = time.monotonic()
    with EmulatorPool(10, auto_trigger=False, seed_jobs=100) as pool:
        assert len(set(pool.urls)) == 10
        assert len({e.loop_thread for e in pool}) == 1
        for emu in pool:
            es = Elasticsearch(emu.url, max_retries=0)
            assert len(es.rollup.get_jobs(id="_all")["jobs"]) == 100
            es.close()
        pool[3].add_job("extra", state="started")
        assert pool[3].job_state("extra") == "started"
    assert time.monotonic() - t0 < 15


def _control(url: str, method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_cli_parser_accepts_documented_flags():
    args = build_parser().parse_args(["--port", "0", "--version", "9.1.0", "--user", "a:b:all,monitor",
                                      "--api-key", "id:key:manage_rollup", "--seed-jobs", "5",
                                      "--page-duration", "0.5", "--pages-per-run", "none", "--stop-delay", "2"])
    assert args.user == [("a", ("b", ["all", "monitor"]))]
    assert args.pages_per_run is None and args.stop_delay == 2.0


def test_standalone_cli_starts_and_answers():
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "operator"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "es_rollup_emulator", "--port", "0", "--version", "8.17.0", "--seed-jobs", "3",
         "--no-auto-trigger", "--page-duration", "0.05", "--user", "admin:pw:all"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        m = re.search(r"listening on (http://\S+)", line)
        assert m, line + proc.stderr.read()
        url = m.group(1)
        es = Elasticsearch(url, basic_auth=("admin", "pw"), max_retries=0)
        assert es.info()["version"]["number"] == "8.17.0"
        assert len(es.rollup.get_jobs(id="_all")["jobs"]) == 3
        # control API: seed, start, trigger, faults, request log
        _control(url, "POST", "/_emulator/jobs", {"id": "ctl", "state": "started", "pages_per_run": 1})
        assert _control(url, "POST", "/_emulator/jobs/ctl/_trigger")["triggered"] is True
        assert _control(url, "GET", "/_emulator/jobs/ctl")["status"]["job_state"] == "indexing"
        _control(url, "POST", "/_emulator/faults", {"fail_next": {"count": 1, "status": 503}})
        with pytest.raises(ApiError):
            es.info()
        assert _control(url, "GET", "/_emulator/requests/_count?path=/")["count"] == 2
        _control(url, "PUT", "/_emulator/users/admin", {"password": "new", "privileges": ["all"]})
        es2 = Elasticsearch(url, basic_auth=("admin", "new"), max_retries=0)
        assert es2.info()["tagline"] == "You Know, for Search"
        es.close()
        es2.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
