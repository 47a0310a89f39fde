"""A real single-node Kubernetes cluster on this machine, for the end-to-end suite and the sandbox.

etcd + kube-apiserver (the API server harness binary, devtools/go/apiserver), kube-controller-manager,
kube-scheduler, kubelet and kube-proxy (one binary from devtools/go/node), containerd + runc + the CNI
bridge/host-local/portmap plugins (Debian packages). Images come from devtools/harness/images.py and
are imported into containerd (no registry: Pods use ``imagePullPolicy: Never``).

    with LocalNode() as node:            # ~1 min from cache; see docs/development.md for cold figures
        node.kubectl("get", "nodes")
        node.admin_kubeconfig, node.images["operator"].name

Everything lives in a fresh run directory (``/run/rollup-node-<pid>-...``, removed at the end);
what is added to the host (an address on lo, the bridge, iptables chains, mounts) is listed and
removed by devtools/harness/node_host.py, also after a failure, Ctrl-C, or a killed earlier run.
A component that exits, a Node that is not Ready, a missing package: LocalNodeError with the
component's own log lines. Needs root.

    python -m devtools.harness.node [--keep-running]   # start, print the KUBECONFIG, Ctrl-C stops
    python -m devtools.harness.node --cleanup          # remove what a killed run left behind
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from . import node_build, node_config, node_host
from .apiserver import APIServer, APIServerError
from .apiserver import ensure_built as ensure_apiserver
from .gobuild import Progress
from .images import Builder, Image
from .node_proc import Component, _cmdline, _hold_signals, _restore_signals

NODE_NAME = "rollup-node"
# Debian package -> a command it ships (preflight names the package to install).
PACKAGES = {"containerd": "containerd", "runc": "runc", "containernetworking-plugins": "/usr/lib/cni/bridge",
            "iptables": "iptables", "buildah": "buildah", "debootstrap": "debootstrap", "conntrack": "conntrack",
            "nftables": "nft", "iproute2": "ip", "gcc": "gcc"}


class LocalNodeError(RuntimeError):
    pass


def missing_packages() -> list[str]:
    return [pkg for pkg, cmd in PACKAGES.items() if not (shutil.which(cmd) or os.access(cmd, os.X_OK))]


def skip_reason() -> str | None:
    """Why this machine cannot run a local node at all (None: it can)."""
    if os.geteuid() != 0:
        return "the local-node cluster needs root (containerd, network namespaces, iptables)"
    if not Path("/sys/fs/cgroup").is_dir():
        return "no cgroup filesystem"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalNode:
    def __init__(self, progress: Progress | None = print, ready_timeout: float = 120.0,
                 extra_args: dict[str, list[str]] | None = None) -> None:
        self.progress = progress or (lambda _m: None)
        self.extra_args = extra_args or {}  # component name -> extra flags (tests of failure paths)
        self.ready_timeout = ready_timeout
        self.run: Path | None = None
        self.api: APIServer | None = None
        self.components: dict[str, Component] = {}
        self.images: dict[str, Image] = {}
        self.timings: dict[str, float] = {}
        self._lock = node_host.MachineLock(progress=self.progress)
        self._locked = False

    # ---- setup -------------------------------------------------------------------------------
    def start(self) -> "LocalNode":
        t_all = time.monotonic()
        reason = skip_reason()
        if reason:
            raise LocalNodeError(reason)
        missing = missing_packages()
        if missing:
            raise LocalNodeError(f"missing Debian packages: apt-get install -y {' '.join(missing)}")
        if not Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists():
            # without it a Pod's reply to another Pod on the bridge skips kube-proxy's un-DNAT
            raise LocalNodeError("bridged traffic is not seen by iptables: modprobe br_netfilter")
        t = time.monotonic()
        node_bin = node_build.ensure_built(self.progress)
        api_bin = ensure_apiserver(self.progress)
        self.timings["go_binaries"] = time.monotonic() - t
        t = time.monotonic()
        self.images = Builder(self.progress).all()
        self.timings["images"] = time.monotonic() - t
        self._lock.__enter__()
        self._locked = True
        atexit.register(self.stop)
        try:
            self._start_locked(node_bin, api_bin)
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - t_all
        return self

    def _start_locked(self, node_bin: Path, api_bin: Path) -> None:
        old = node_host.read_state()
        if old:
            self.progress(f"[node] removing what an earlier run left behind: {old}")
            problems = node_host.teardown(old.get("run_dir"))
            if problems:
                raise LocalNodeError(f"could not clean up an earlier run: {problems}")
        t = time.monotonic()
        self.run = Path(tempfile.mkdtemp(prefix=f"rollup-node-{os.getpid()}-", dir="/run"))
        node_host.record(run_dir=str(self.run), pid=os.getpid())
        run = self.run
        for d in ("cni/net.d", "kubelet", "logs", "pki"):
            (run / d).mkdir(parents=True, exist_ok=True)
        node_host.add_node_address()
        sock = run / "containerd.sock"
        (run / "containerd.toml").write_text(node_config.containerd_toml(run, sock, self.images["pause"].name))
        (run / "cni/net.d/10-rollup.conflist").write_text(node_config.cni_conflist(run))
        (run / "resolv.conf").write_text("nameserver 127.0.0.1\n")

        ports = {k: _free_port() for k in ("kubelet", "kubelet_healthz", "kcm", "sched", "proxy_healthz", "proxy_metrics")}
        self.api = APIServer(binary=api_bin, data_dir=run / "apiserver", keep=True, progress=self.progress, extra_args=[
            "--bind-address=0.0.0.0", f"--advertise-address={node_host.NODE_IP}", "--endpoint-reconciler-type=lease",
            "--kubelet-preferred-address-types=InternalIP", "--allow-privileged=false"])
        self.api.start()
        node_host.guard_ports([self.api.port, ports["kubelet"]])
        self.timings["apiserver"] = time.monotonic() - t
        admin, pki = self.api.admin_kubeconfig, run / "apiserver" / "pki"

        t = time.monotonic()
        self._spawn("containerd", ["containerd", "--config", str(run / "containerd.toml")],
                    ready=lambda: sock.exists() and self._ctr("version").returncode == 0)
        for img in self.images.values():
            if img is not self.images["base"]:
                self._import(img)
        self.timings["containerd+images"] = time.monotonic() - t

        t = time.monotonic()
        (run / "kubelet.yaml").write_text(node_config.kubelet_yaml(run, sock, ports["kubelet"], ports["kubelet_healthz"]))
        (run / "kube-proxy.yaml").write_text(node_config.kube_proxy_yaml(admin, NODE_NAME, ports["proxy_healthz"],
                                                                       ports["proxy_metrics"]))
        nb = str(node_bin)
        self._spawn("kube-controller-manager", [
            nb, "kube-controller-manager", f"--kubeconfig={admin}", f"--authentication-kubeconfig={admin}",
            f"--authorization-kubeconfig={admin}", "--bind-address=127.0.0.1", f"--secure-port={ports['kcm']}",
            f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=false", "--leader-elect=false", f"--cert-dir={run / 'pki'}",
            f"--service-cluster-ip-range={node_config.SERVICE_CIDR}", "--controllers=*,-nodeipam,-cloud-node-lifecycle"])
        self._spawn("kube-scheduler", [
            nb, "kube-scheduler", f"--kubeconfig={admin}", f"--authentication-kubeconfig={admin}",
            f"--authorization-kubeconfig={admin}", "--bind-address=127.0.0.1", f"--secure-port={ports['sched']}",
            "--leader-elect=false", f"--cert-dir={run / 'pki'}"])
        self._spawn("kubelet", [
            nb, "kubelet", f"--config={run / 'kubelet.yaml'}", f"--kubeconfig={admin}", f"--root-dir={run / 'kubelet'}",
            f"--cert-dir={run / 'pki'}", f"--hostname-override={NODE_NAME}", f"--node-ip={node_host.NODE_IP}"])
        self._spawn("kube-proxy", [nb, "kube-proxy", f"--config={run / 'kube-proxy.yaml'}"])
        self._wait("the Node to be Ready", self._node_ready, "kubelet")
        self._wait("the default ServiceAccount", lambda: self.kubectl("get", "sa", "default", check=False).returncode == 0,
                   "kube-controller-manager")
        self.timings["node_ready"] = time.monotonic() - t
        self.progress(f"[node] Node {NODE_NAME} Ready; export KUBECONFIG={admin}")

    def _spawn(self, name: str, argv: list[str], ready=None) -> Component:
        comp = Component(name, [*argv, *self.extra_args.get(name, [])], self.run / "logs" / f"{name}.log")
        self.components[name] = comp
        comp.start()
        if ready:
            self._wait(f"{name} to answer", ready, name, timeout=60)
        return comp

    def _wait(self, what: str, pred, blame: str, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        while time.monotonic() < deadline:
            for comp in self.components.values():
                if not comp.alive():
                    raise LocalNodeError(f"{comp.name} exited with {comp.returncode()} while waiting for {what}:\n"
                                         f"{comp.tail()}")
            if pred():
                return
            time.sleep(0.5)
        raise LocalNodeError(f"timed out after {timeout or self.ready_timeout:.0f}s waiting for {what}; "
                             f"{blame}'s log:\n{self.components[blame].tail()}")

    def _node_ready(self) -> bool:
        p = self.kubectl("get", "node", NODE_NAME, "-o",
                         "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False)
        return p.stdout.strip() == "True"

    def _ctr(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        p = subprocess.run(["ctr", "--address", str(self.run / "containerd.sock"), "-n", "k8s.io", *args],
                           capture_output=True, text=True)
        if check and p.returncode != 0:
            raise LocalNodeError(f"ctr {' '.join(args)} failed: {p.stderr.strip()}\n"
                                 f"{self.components['containerd'].tail(20)}")
        return p

    def _import(self, img: Image) -> None:
        self._ctr("images", "import", "--no-unpack", str(img.archive), check=True)
        names = self._ctr("images", "ls", "-q").stdout.split()
        if img.name not in names:
            raise LocalNodeError(f"importing {img.archive} did not create image {img.name}; containerd has {names}")

    # ---- use ---------------------------------------------------------------------------------
    @property
    def admin_kubeconfig(self) -> str:
        assert self.api is not None
        return self.api.admin_kubeconfig

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess:
        p = subprocess.run(["kubectl", "--kubeconfig", self.admin_kubeconfig, *args], capture_output=True, text=True,
                           input=input, timeout=timeout)
        if check and p.returncode != 0:
            raise LocalNodeError(f"kubectl {' '.join(args)} failed: {p.stderr.strip()}")
        return p

    def wait_rollout(self, namespace: str, deployment: str, timeout: float = 180) -> None:
        """``kubectl rollout status``; on failure LocalNodeError with the Pods' state and events and
        the kubelet's and containerd's own last lines."""
        p = self.kubectl("-n", namespace, "rollout", "status", f"deploy/{deployment}", f"--timeout={int(timeout)}s",
                         check=False, timeout=timeout + 30)
        if p.returncode == 0:
            return
        pods = self.kubectl("-n", namespace, "get", "pods", "-o", "wide", check=False).stdout
        events = self.kubectl("-n", namespace, "get", "events", "--sort-by=.lastTimestamp", check=False).stdout
        raise LocalNodeError(f"deploy/{deployment} in {namespace} did not become available: {p.stderr.strip()}\n"
                             f"{pods}\n{events[-3000:]}\n{self.logs('kubelet', 25)}\n{self.logs('containerd', 10)}")

    def logs(self, name: str, lines: int = 60) -> str:
        if name == "kube-apiserver" and self.api:
            return self.api.log_tail(lines)
        return self.components[name].tail(lines)

    def rss(self) -> dict[str, int]:
        """Resident memory (bytes) of each component, containerd's shims summed."""
        out = {"kube-apiserver+etcd": (self.api.rss_bytes() or 0) if self.api else 0}
        out.update({n: c.rss() for n, c in self.components.items()})
        shims = node_host.pids_matching("containerd-shim")
        out["shims"] = sum(Component.rss_of(p) for p in shims if self.run and str(self.run) in _cmdline(p))
        for pid in node_host.cgroup_pids():  # the Pods' processes, by command line
            cmd = " ".join(_cmdline(pid).split()[:2])
            out[f"pod: {cmd}"] = out.get(f"pod: {cmd}", 0) + Component.rss_of(pid)
        return out

    # ---- teardown ----------------------------------------------------------------------------
    def stop(self) -> None:
        atexit.unregister(self.stop)
        if not self._locked:
            return
        t0 = time.monotonic()
        # a second Ctrl-C / SIGTERM must not cut the clean-up short
        held = _hold_signals()
        try:
            for name in ("kube-proxy", "kube-scheduler", "kube-controller-manager", "kubelet"):
                if name in self.components:
                    self.components[name].stop()
            if "kube-proxy" in self.components and self.run:
                subprocess.run([self.components["kube-proxy"].argv[0], "kube-proxy", "--cleanup",
                                f"--config={self.run / 'kube-proxy.yaml'}"], capture_output=True, timeout=60)
            # the Pods' processes and their shims go before the API server, whose graceful
            # shutdown would otherwise wait on their open watches
            node_host.kill_all(node_host.cgroup_pids())
            if self.run:
                node_host.kill_all([p for p in node_host.pids_matching("containerd-shim") if str(self.run) in _cmdline(p)])
            if "containerd" in self.components:
                self.components["containerd"].stop()
            if self.api:
                try:
                    self.api.stop()
                except APIServerError:
                    pass
            problems = node_host.teardown(str(self.run) if self.run else None)
            if self.run and not problems:
                shutil.rmtree(self.run, ignore_errors=True)
            if problems:
                raise LocalNodeError(f"clean-up left: {problems}")
            self.timings["stop"] = time.monotonic() - t0
        finally:
            self._lock.__exit__(None, None, None)
            self._locked = False
            _restore_signals(held)

    def __enter__(self) -> "LocalNode":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    from .node_cli import main

    raise SystemExit(main())
