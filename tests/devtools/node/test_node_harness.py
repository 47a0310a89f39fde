"""The single-node cluster harness itself (devtools/harness/node.py): it starts, its failures carry the
failing component's own log lines, and it leaves nothing on the machine -- after a normal stop, a
failed start, Ctrl-C, and (through the next run's or --cleanup's sweep) a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from devtools.harness import node, node_host
from devtools.harness.gobuild import REPO_ROOT

pytestmark = pytest.mark.slow
ROOT = str(REPO_ROOT)


@pytest.fixture(autouse=True)
def _needs_root():
    reason = node.skip_reason()
    if reason:
        pytest.skip(reason)


def leftovers(run_dir: str | None) -> list[str]:
    out = node_host.leftover_chains()
    if node_host.bridge_exists():
        out.append("bridge")
    if node_host.address_on_lo():
        out.append("lo address")
    if run_dir:
        out += [f"mount {m}" for m in node_host.mounts_under(run_dir)]
        out += [f"pid {p}" for p in node_host.pids_matching(run_dir)]
        if os.path.exists(run_dir):
            out.append(f"run dir {run_dir}")
    out += [f"netns {m}" for m in node_host.mounts_under("/run/netns") if os.path.basename(m).startswith("cni-")]
    out += [f"cgroup pid {p}" for p in node_host.cgroup_pids()]
    return out


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper", "namespace": "default"},
       "spec": {"containers": [{"name": "c", "image": "IMAGE", "imagePullPolicy": "Never"}]}}


def _pod(n: node.LocalNode) -> None:
    body = json.loads(json.dumps(POD).replace("IMAGE", n.images["pause"].name))
    n.kubectl("apply", "-f", "-", input=json.dumps(body))
    n.kubectl("wait", "--for=condition=Ready", "pod/sleeper", "--timeout=90s")


def test_start_run_a_pod_stop_leaves_nothing():
    n = node.LocalNode()
    n.start()
    run_dir = str(n.run)
    try:
        version = n.kubectl("get", "node", node.NODE_NAME, "-o", "jsonpath={.status.nodeInfo.kubeletVersion}").stdout
        assert version == node.node_build.k8s_version()
        _pod(n)
        rss = n.rss()
        print("RSS MB:", {k: round(v / 2**20) for k, v in rss.items()}, "timings s:",
              {k: round(v, 1) for k, v in n.timings.items()})
        assert all(rss[k] > 0 for k in ("kube-apiserver+etcd", "kubelet", "containerd", "shims"))
        assert node_host.bridge_exists() and node_host.address_on_lo() and node_host.mounts_under(run_dir)
    finally:
        n.stop()
    print("stop s:", round(n.timings["stop"], 1))
    assert leftovers(run_dir) == []


def test_a_pod_that_cannot_start_fails_with_its_events_and_the_kubelets_log():
    with node.LocalNode() as n:
        n.kubectl("create", "deployment", "broken", "--image=rollup-operator:no-such-tag")
        n.kubectl("patch", "deploy/broken", "--type=json", "-p",
                  '[{"op": "replace", "path": "/spec/template/spec/containers/0/imagePullPolicy", "value": "Never"}]')
        with pytest.raises(node.LocalNodeError) as ei:
            n.wait_rollout("default", "broken", timeout=20)
    msg = str(ei.value)
    assert "ErrImageNeverPull" in msg and "lines of" in msg and "kubelet.log" in msg, msg


def test_a_component_that_fails_raises_with_its_own_log_and_cleans_up():
    n = node.LocalNode(extra_args={"kubelet": ["--no-such-flag-for-the-test"]})
    with pytest.raises(node.LocalNodeError) as ei:
        n.start()
    msg = str(ei.value)
    assert "kubelet exited" in msg and "unknown flag: --no-such-flag-for-the-test" in msg, msg
    assert leftovers(None) == [] and not node_host.read_state()


def test_missing_packages_are_named(monkeypatch):
    monkeypatch.setitem(node.PACKAGES, "no-such-debian-package", "/nonexistent/tool")
    with pytest.raises(node.LocalNodeError, match="apt-get install -y no-such-debian-package"):
        node.LocalNode().start()


def _spawn_cli():
    proc = subprocess.Popen([sys.executable, "-m", "devtools.harness.node"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    kubeconfig = None
    deadline = time.monotonic() + 300
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("export KUBECONFIG="):
            kubeconfig = line.split("=", 1)[1].strip()
            break
        assert time.monotonic() < deadline, "".join(lines)
    assert kubeconfig, "".join(lines)
    return proc, kubeconfig, node_host.read_state()["run_dir"]


def test_ctrl_c_cleans_up():
    proc, _kc, run_dir = _spawn_cli()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(120) == 0
    assert leftovers(run_dir) == []


def test_a_killed_run_is_swept_by_cleanup():
    proc, kubeconfig, run_dir = _spawn_cli()
    subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "apply", "-f", "-"], check=True, text=True, capture_output=True,
                   input=json.dumps(POD).replace("IMAGE", node.Builder(None).pause().name))
    subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "wait", "--for=condition=Ready", "pod/sleeper", "--timeout=90s"],
                   check=True, capture_output=True)
    proc.kill()
    proc.wait(30)
    time.sleep(1)
    assert leftovers(run_dir), "a SIGKILLed run should have left something for the sweep to remove"
    p = subprocess.run([sys.executable, "-m", "devtools.harness.node", "--cleanup"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert leftovers(run_dir) == []


def test_a_second_cluster_waits_for_the_first_and_says_so():
    said = []
    with node_host.MachineLock(timeout=5):
        with pytest.raises(node_host.HostError, match="another local-node cluster held"):
            with node_host.MachineLock(timeout=1, progress=said.append):
                pass
    assert said and "waiting for" in said[0]
    with node_host.MachineLock(timeout=1):  # free again
        pass
