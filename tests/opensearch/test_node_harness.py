"""The OpenSearch node harness itself (devtools/harness/opensearch.py): the node is the real server
with the rollup plugins, and a SIGKILL of the test run leaves no process and no directory behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from devtools.harness.gobuild import REPO_ROOT


def test_node_is_opensearch_with_the_rollup_plugins(opensearch_node):
    status, body = opensearch_node.request("GET", "/")
    assert status == 200
    assert body["version"]["distribution"] == "opensearch"
    assert body["version"]["number"] == "2.19.4"
    status, plugins = opensearch_node.request("GET", "/_cat/plugins?format=json")
    versions = {p["component"]: p["version"] for p in plugins}
    assert versions["opensearch-index-management"] == "2.19.4.0"  # built from the source tag
    assert versions["opensearch-job-scheduler"] == "2.19.4.0"  # the zip from Maven Central
    assert opensearch_node.url.startswith("http://127.0.0.1:")
    # The rollup API answers (404 before any job: the config index does not exist yet, or Rollup not found).
    status, body = opensearch_node.request("GET", "/_plugins/_rollup/jobs/harness-probe")
    assert status == 404, body


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_sigkill_of_the_test_run_leaves_nothing_behind(opensearch_node):
    # The session node is up, so the build is cached: this child only starts a second node.
    script = (
        "import json, os, sys; sys.path.insert(0, sys.argv[1])\n"
        "from devtools.harness.opensearch import OpenSearchNode\n"
        "n = OpenSearchNode(progress=None).start()\n"
        "jvm = open(f'/proc/{n.proc.pid}/task/{n.proc.pid}/children').read().split()[0]\n"
        "print(json.dumps({'guard': n.proc.pid, 'jvm': int(jvm), 'dir': str(n.dir), 'url': n.url}), flush=True)\n"
        "import time; time.sleep(600)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(REPO_ROOT)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        info = json.loads(child.stdout.readline())
        assert Path(info["dir"]).is_dir() and not _gone(info["jvm"])
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not (
                _gone(info["guard"]) and _gone(info["jvm"]) and not Path(info["dir"]).exists()):
            time.sleep(0.5)
        assert _gone(info["jvm"]), f"JVM {info['jvm']} outlived the killed test run"
        assert _gone(info["guard"]), f"guard {info['guard']} outlived the killed test run"
        assert not Path(info["dir"]).exists(), f"{info['dir']} left behind"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
