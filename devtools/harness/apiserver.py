"""A real kube-apiserver (+ embedded etcd) for tests, built from Go modules.

The Go program lives in ``devtools/go/apiserver/`` (``main.go``). It pins k8s.io/kubernetes v1.36.3
and etcd 3.6 and serves on 127.0.0.1 with RBAC, token authentication and service-account
keys. Three identities are set up, each with a kubeconfig that verifies the server's TLS
certificate:

* ``admin_kubeconfig``    user ``admin`` in ``system:masters`` (cluster admin)
* ``operator_kubeconfig`` the operator's ServiceAccount identity
  (``system:serviceaccount:rollup-operator-system:rollup-operator``); RBAC applies to it as in
  a cluster, so it can do nothing until the project's ClusterRole/Binding are applied
* ``user_kubeconfig``     user ``tester``, only ``system:authenticated`` (for denial tests)

Not running (no kube-controller-manager): namespaces stay Terminating after delete, no
garbage collection by ownerReferences, no ``default`` ServiceAccount in new namespaces.

Usage::

    with APIServer() as api:           # builds if needed, starts, waits for /readyz
        print(api.url, api.admin_kubeconfig)
        api.restart()                  # same etcd data, ports, certs, tokens

Command line (a sandbox to play with)::

    python -m devtools.harness.apiserver [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from .gobuild import GO_DIR, Progress, build_go_binary

SRC_DIR = GO_DIR / "apiserver"
BINARY_NAME = "kube-apiserver-harness"

DEFAULT_SA_NAMESPACE = "rollup-operator-system"
DEFAULT_SA_NAME = "rollup-operator"


def ensure_built(progress: Progress | None = print) -> Path:
    """Build (or reuse the cached) apiserver harness binary and return its path. It is stamped with
    its ``k8s.io/kubernetes`` version (as the node binary is), so clients such as helm see a real
    version instead of ``v0.0.0-master``."""
    from .node_build import k8s_version, ldflags

    return build_go_binary(SRC_DIR, BINARY_NAME, progress=progress, ldflags=ldflags(k8s_version(SRC_DIR)))


def api_client(kubeconfig: str | Path):
    """A kubernetes.client.ApiClient for a kubeconfig (its own Configuration, not the global one)."""
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    return client.ApiClient(configuration=cfg)


class APIServerError(RuntimeError):
    pass


def _pdeathsig() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: die with the parent
    except Exception:
        pass


class APIServer:
    """One kube-apiserver + etcd process; a context manager.

    ``data_dir``: where everything is written; default a fresh temp dir, removed on stop()
    (kept if ``keep=True`` or ``$ROLLUP_HARNESS_KEEP=1``).
    """

    def __init__(
        self,
        binary: Path | str | None = None,
        data_dir: Path | str | None = None,
        *,
        sa_namespace: str = DEFAULT_SA_NAMESPACE,
        sa_name: str = DEFAULT_SA_NAME,
        port: int = 0,
        etcd_port: int = 0,
        ready_timeout: float = 120.0,
        keep: bool | None = None,
        extra_args: list[str] | tuple[str, ...] = (),
        progress: Progress | None = print,
    ) -> None:
        self._binary = Path(binary) if binary else None
        self._given_data_dir = Path(data_dir) if data_dir else None
        self.sa_namespace = sa_namespace
        self.sa_name = sa_name
        self._port = port
        self._etcd_port = etcd_port
        self.ready_timeout = ready_timeout
        self.keep = keep if keep is not None else os.environ.get("ROLLUP_HARNESS_KEEP") == "1"
        self.extra_args = list(extra_args)
        self.progress = progress or (lambda _m: None)
        self.proc: subprocess.Popen | None = None
        self.data_dir: Path | None = None
        self.info: dict = {}
        self.start_seconds: float | None = None  # last start(): launch -> ready
        self._log_file = None
        self._owns_dir = False
        self._atexit_registered = False

    # ---- paths / info -------------------------------------------------------------------
    @property
    def binary(self) -> Path:
        if self._binary is None:
            self._binary = ensure_built(self.progress)
        return self._binary

    def _need(self, key: str) -> str:
        if not self.info:
            raise APIServerError("API server not started")
        return self.info[key]

    @property
    def url(self) -> str:
        return self._need("url")

    @property
    def ca_file(self) -> str:
        return self._need("ca_file")

    @property
    def admin_kubeconfig(self) -> str:
        return self._need("admin_kubeconfig")

    @property
    def operator_kubeconfig(self) -> str:
        return self._need("operator_kubeconfig")

    @property
    def user_kubeconfig(self) -> str:
        return self._need("user_kubeconfig")

    @property
    def port(self) -> int:
        return int(self._need("port"))

    @property
    def operator_username(self) -> str:
        return f"system:serviceaccount:{self.sa_namespace}:{self.sa_name}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def log_path(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "apiserver.log"

    def client(self, who: str = "admin"):
        """kubernetes.client.ApiClient as "admin", "operator" or "user"."""
        return api_client(self._need(f"{who}_kubeconfig"))

    def tokens(self) -> dict[str, str]:
        """{"admin": ..., "operator": ..., "user": ...} bearer tokens."""
        assert self.data_dir is not None
        return json.loads((self.data_dir / "tokens.json").read_text())

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, AssertionError):
            return "(no log)"

    def rss_bytes(self) -> int | None:
        """Resident memory of the apiserver+etcd process."""
        if not self.proc:
            return None
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self) -> "APIServer":
        if self.proc and self.proc.poll() is None:
            raise APIServerError("already running")
        binary = self.binary
        if self.data_dir is None:
            if self._given_data_dir is not None:
                self.data_dir = self._given_data_dir.resolve()
                self.data_dir.mkdir(parents=True, exist_ok=True)
            else:
                self.data_dir = Path(tempfile.mkdtemp(prefix="rollup-apiserver-"))
                self._owns_dir = True
        ready_file = self.data_dir / "ready.json"
        try:
            ready_file.unlink()
        except FileNotFoundError:
            pass
        args = [
            str(binary),
            f"--data-dir={self.data_dir}",
            f"--sa-namespace={self.sa_namespace}",
            f"--sa-name={self.sa_name}",
            f"--ready-timeout={int(self.ready_timeout)}s",
        ]
        if self._port:
            args.append(f"--port={self._port}")
        if self._etcd_port:
            args.append(f"--etcd-port={self._etcd_port}")
        args += [f"--apiserver-arg={a}" for a in self.extra_args]
        self._log_file = open(self.log_path, "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            args, stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
            # die with us if we are killed -- only from the main thread, since the kernel ties
            # PDEATHSIG to the thread that forked
            preexec_fn=_pdeathsig if threading.current_thread() is threading.main_thread() else None,
        )
        if not self._atexit_registered:
            atexit.register(self._atexit)
            self._atexit_registered = True
        deadline = t0 + self.ready_timeout
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self._close_log()
                raise APIServerError(
                    f"kube-apiserver harness exited with {code} before ready; log {self.log_path}:\n{self.log_tail()}"
                )
            if ready_file.exists():
                try:
                    self.info = json.loads(ready_file.read_text())
                    break
                except json.JSONDecodeError:
                    pass
            if time.monotonic() > deadline:
                self.stop(cleanup=False)
                raise APIServerError(
                    f"kube-apiserver not ready after {self.ready_timeout:.0f}s; log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.1)
        # Pin the ports so restart() comes back on the same addresses.
        self._port = int(self.info["port"])
        self._etcd_port = int(self.info["etcd_port"])
        status, body = self.readyz()
        if status != 200:
            self.stop(cleanup=False)
            raise APIServerError(f"/readyz answered {status}: {body}\n{self.log_tail()}")
        self.start_seconds = time.monotonic() - t0
        return self

    def readyz(self, timeout: float = 5.0) -> tuple[int, str]:
        """GET /readyz as admin, verifying TLS against the harness CA."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        req = urllib.request.Request(
            self.url + "/readyz", headers={"Authorization": "Bearer " + self.tokens()["admin"]}
        )
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as e:
            return 0, str(e)

    def stop(self, cleanup: bool = True, timeout: float = 40.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL after ``timeout``); remove a temp data dir."""
        proc, self.proc = self.proc, None
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # in case it was paused
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self._close_log()
        if cleanup:
            self.info = {}
            if self.data_dir and self._owns_dir and not self.keep:
                shutil.rmtree(self.data_dir, ignore_errors=True)
                self.data_dir = None

    def restart(self) -> "APIServer":
        """Stop and start the process again: same etcd data, ports, certs and tokens, so
        existing kubeconfigs and clients keep working after they reconnect."""
        self.stop(cleanup=False)
        return self.start()

    def kill(self) -> None:
        """SIGKILL the process (crash simulation); start() afterwards reuses the data dir."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
        self._close_log()

    def pause(self) -> None:
        """SIGSTOP the process: connections hang (an unresponsive API server)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after pause()."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def _close_log(self) -> None:
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    def _atexit(self) -> None:
        try:
            self.stop()
        except Exception:
            pass

    def __enter__(self) -> "APIServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m devtools.harness.apiserver",
        description="Build and run a local kube-apiserver + etcd sandbox until Ctrl-C.",
    )
    ap.add_argument("--data-dir", help="keep everything here (reused on the next run); default: a temp dir removed at exit")
    ap.add_argument("--sa-namespace", default=DEFAULT_SA_NAMESPACE)
    ap.add_argument("--sa-name", default=DEFAULT_SA_NAME)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)

    api = APIServer(data_dir=args.data_dir, sa_namespace=args.sa_namespace, sa_name=args.sa_name,
                    port=args.port, keep=bool(args.data_dir))
    api.start()
    print(f"# kube-apiserver ready at {api.url} in {api.start_seconds:.1f}s (pid {api.pid}); log {api.log_path}")
    print(f"export KUBECONFIG={api.admin_kubeconfig}")
    print(f"# operator identity ({api.operator_username}): {api.operator_kubeconfig}")
    print(f"# unprivileged user 'tester': {api.user_kubeconfig}")
    print("# Ctrl-C to stop", flush=True)

    stop = {"flag": False}

    def on_signal(signum, _frame):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        while not stop["flag"]:
            if api.proc is None or api.proc.poll() is not None:
                print(f"kube-apiserver exited unexpectedly; log tail:\n{api.log_tail()}", file=sys.stderr)
                return 1
            time.sleep(0.5)
    finally:
        print("# stopping", flush=True)
        api.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
