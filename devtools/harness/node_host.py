"""Host state of the single-node cluster: what it adds to this machine and how it is taken away.

One cluster per machine at a time: kube-proxy's and kubelet's iptables chains (``KUBE-*``) and the
Service range of the API server harness are machine-wide, so a second run waits for the first on
a file lock (``/run/rollup-node-harness.lock``) instead of colliding with it. What a run adds is
written to ``/run/rollup-node-harness/state.json`` before it is added, so a run that was killed
is cleaned up by the next one (or by ``python -m devtools.harness.node --cleanup``):

* a /32 address on ``lo`` (the node's and the API server's advertise address; ``ip link add
  type dummy`` does not work here), and an iptables rule that drops traffic to the cluster's
  ports that comes from any interface but ``lo`` and the CNI bridge;
* the CNI bridge and the Pods' network namespaces;
* iptables/nft chains ``KUBE-*``, ``CNI-*`` and ``ROLLUP-NODE-*`` (kube-proxy ``--cleanup`` first);
* mounts under the run directory (kubelet's volumes, containerd's rootfs and shm mounts);
* processes: containerd's shims and every process in the ``kubepods`` cgroups;
* the ``kubepods`` cgroups.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

LOCK_FILE = Path("/run/rollup-node-harness.lock")
STATE_DIR = Path("/run/rollup-node-harness")
STATE_FILE = STATE_DIR / "state.json"
BRIDGE = "rollupbr0"
NODE_IP = "10.217.255.1"      # on lo, /32
POD_SUBNET = "10.217.0.0/24"  # the bridge's gateway is .1
FILTER_CHAIN = "ROLLUP-NODE-INPUT"
CHAIN_PREFIXES = ("KUBE-", "CNI-", "ROLLUP-NODE-")
CGROUP_ROOT = Path("/sys/fs/cgroup")


class HostError(RuntimeError):
    pass


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise HostError(f"`{' '.join(cmd)}` failed (exit {p.returncode}): {(p.stderr or p.stdout).strip()}")
    return p


class MachineLock:
    """The machine-wide lock: one local-node cluster at a time."""

    def __init__(self, timeout: float = 1800, progress=print) -> None:
        self.timeout, self.progress, self._f = timeout, progress, None

    def __enter__(self) -> "MachineLock":
        self._f = open(LOCK_FILE, "a+")
        deadline = time.monotonic() + self.timeout
        told = False
        while True:
            try:
                fcntl.flock(self._f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if not told:
                    self.progress(f"[node] another local-node cluster runs on this machine; waiting for {LOCK_FILE}")
                    told = True
                if time.monotonic() > deadline:
                    raise HostError(f"another local-node cluster held {LOCK_FILE} for more than {self.timeout:.0f}s")
                time.sleep(1)

    def __exit__(self, *exc) -> None:
        if self._f:
            fcntl.flock(self._f, fcntl.LOCK_UN)
            self._f.close()
            self._f = None


def record(**state) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    old = read_state()
    old.update(state)
    STATE_FILE.write_text(json.dumps(old))


def read_state() -> dict:
    try:
        return json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return {}


# ---- setup -------------------------------------------------------------------------------------
def add_node_address() -> None:
    if NODE_IP not in sh("ip", "-4", "addr", "show", "dev", "lo").stdout:
        sh("ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo")


def guard_ports(ports: list[int]) -> None:
    """Drop traffic to the cluster's listeners from any interface but lo and the CNI bridge."""
    sh("iptables", "-N", FILTER_CHAIN, check=False)
    sh("iptables", "-F", FILTER_CHAIN)
    for iface in ("lo", BRIDGE):
        sh("iptables", "-A", FILTER_CHAIN, "-i", iface, "-j", "RETURN")
    for port in ports:
        sh("iptables", "-A", FILTER_CHAIN, "-p", "tcp", "--dport", str(port), "-j", "DROP")
    if sh("iptables", "-C", "INPUT", "-j", FILTER_CHAIN, check=False).returncode != 0:
        sh("iptables", "-I", "INPUT", "1", "-j", FILTER_CHAIN)


# ---- inspection (also what the tests check after teardown) ----------------------------------------
def leftover_chains() -> list[str]:
    out = []
    for tool in ("iptables-save", "ip6tables-save"):
        p = sh(tool, check=False)
        out += [f"{tool}: {ln}" for ln in p.stdout.splitlines()
                if ln.startswith(":") and ln[1:].startswith(CHAIN_PREFIXES)]
    p = sh("nft", "list", "tables", check=False)
    out += [f"nft: {ln}" for ln in p.stdout.splitlines() if "kube-proxy" in ln]
    return out


def mounts_under(*roots: Path | str) -> list[str]:
    roots_s = [str(r).rstrip("/") + "/" for r in roots]
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mp = line.split()[4].replace("\\040", " ")
        if any(mp.startswith(r) or mp + "/" == r for r in roots_s):
            found.append(mp)
    return found


def netns_mounts(names: list[str]) -> list[str]:
    return [m for m in mounts_under("/run/netns", "/var/run/netns") if os.path.basename(m) in names]


def bridge_exists() -> bool:
    return sh("ip", "link", "show", BRIDGE, check=False).returncode == 0


def address_on_lo() -> bool:
    return NODE_IP in sh("ip", "-4", "addr", "show", "dev", "lo").stdout


def pids_matching(needle: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if needle in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def kubepods_cgroups() -> list[Path]:
    found = []
    if CGROUP_ROOT.is_dir():
        for hier in CGROUP_ROOT.iterdir():
            for name in ("kubepods", "kubepods.slice"):
                if (hier / name).is_dir():
                    found.append(hier / name)
    return found


def cgroup_pids() -> list[int]:
    pids = set()
    for cg in kubepods_cgroups():
        for procs in cg.rglob("cgroup.procs"):
            try:
                pids.update(int(x) for x in procs.read_text().split())
            except (OSError, ValueError):
                pass
    return sorted(pids)


# ---- teardown ----------------------------------------------------------------------------------
def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() and _alive(p) for p in pids):
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def unmount_all(paths: list[str]) -> list[str]:
    """Lazy-unmount, deepest first; returns what could not be unmounted."""
    failed = []
    for mp in sorted(set(paths), key=lambda m: m.count("/"), reverse=True):
        if sh("umount", "-l", mp, check=False).returncode != 0 and mp in mounts_under(os.path.dirname(mp)):
            failed.append(mp)
    return failed


def remove_chains() -> None:
    for tool in ("iptables", "ip6tables"):
        sh(tool, "-D", "INPUT", "-j", FILTER_CHAIN, check=False)
        for table in ("filter", "nat", "mangle", "raw"):
            save = sh(f"{tool}-save", "-t", table, check=False).stdout
            chains = [ln[1:].split()[0] for ln in save.splitlines() if ln.startswith(":")]
            ours = [c for c in chains if c.startswith(CHAIN_PREFIXES)]
            # rules in built-in chains that jump to ours go first, then ours are flushed and deleted
            for ln in save.splitlines():
                m = re.match(r"-A (\S+) (.*-j (\S+).*)$", ln)
                if m and m.group(1) not in ours and m.group(3) in ours:
                    sh(tool, "-t", table, "-D", m.group(1), *_split_rule(m.group(2)), check=False)
            for c in ours:
                sh(tool, "-t", table, "-F", c, check=False)
            for c in ours:
                sh(tool, "-t", table, "-X", c, check=False)
    for fam in ("ip", "ip6"):  # kube-proxy's nftables mode, if it was ever used
        sh("nft", "delete", "table", fam, "kube-proxy", check=False)


def _split_rule(rule: str) -> list[str]:
    import shlex

    return shlex.split(rule)


def remove_cgroups() -> None:
    for cg in kubepods_cgroups():
        for d in sorted((p for p in cg.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()
            except OSError:
                pass
        try:
            cg.rmdir()
        except OSError:
            pass


def teardown(run_dir: str | None, netns: list[str] | None = None) -> list[str]:
    """Remove everything a run added; returns the problems left (empty when clean)."""
    if run_dir:
        kill_all(pids_matching(run_dir))  # containerd, its shims, kubelet... (all have the run dir in argv)
    kill_all(cgroup_pids())               # the containers' processes
    names = netns if netns is not None else [os.path.basename(m) for m in mounts_under("/run/netns", "/var/run/netns")
                                             if os.path.basename(m).startswith("cni-")]
    problems = unmount_all(([*mounts_under(run_dir)] if run_dir else []) + netns_mounts(names))
    for n in names:
        for base in ("/run/netns", "/var/run/netns"):
            try:
                os.unlink(f"{base}/{n}")
            except OSError:
                pass
    sh("ip", "link", "del", BRIDGE, check=False)
    remove_chains()
    if address_on_lo():
        sh("ip", "addr", "del", f"{NODE_IP}/32", "dev", "lo", check=False)
    remove_cgroups()
    problems += leftover_chains()
    if bridge_exists():
        problems.append(f"bridge {BRIDGE} still exists")
    if address_on_lo():
        problems.append(f"{NODE_IP} still on lo")
    if run_dir and pids_matching(run_dir):
        problems.append(f"processes still running: {pids_matching(run_dir)}")
    if not problems:
        STATE_FILE.unlink(missing_ok=True)
        if run_dir and Path(run_dir).name.startswith("rollup-node-"):
            shutil.rmtree(run_dir, ignore_errors=True)
    return problems
