"""Test-side helpers for integration tests: the cluster as a user sees it, and the operator process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

GROUP, VERSION = "rollup.esops.dev", "v1alpha1"
REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def condition(obj: dict, type_: str) -> dict:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return {}


def is_ready(obj: dict) -> bool:
    """``kubectl wait --for=condition=Ready`` semantics, plus: the status describes the current spec."""
    st = obj.get("status") or {}
    return condition(obj, "Ready").get("status") == "True" and st.get("observedGeneration") == obj["metadata"]["generation"]


class Cluster:
    """A namespace on the real API server, driven through the official Python client as a user would."""

    def __init__(self, api: client.ApiClient, namespace: str):
        self.api = api
        self.ns = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    # --- objects --------------------------------------------------------------------------
    def secret(self, name: str, data: dict[str, str], *, allowed: bool = True, raw: dict[str, bytes] | None = None) -> None:
        """A Secret; ``allowed`` adds the opt-in label rollup.esops.dev/credentials: "true"
        (docs/security.md); ``raw`` adds values as exact bytes (base64 ``data``), e.g. non-UTF-8."""
        import base64

        labels = {"rollup.esops.dev/credentials": "true"} if allowed else None
        body = client.V1Secret(metadata=client.V1ObjectMeta(name=name, labels=labels), string_data=data or None,
                               data={k: base64.b64encode(v).decode() for k, v in (raw or {}).items()} or None)
        try:
            self.core.create_namespaced_secret(self.ns, body)
        except ApiException as e:
            if e.status != 409:
                raise
            self.core.replace_namespaced_secret(name, self.ns, body)

    def connection(self, name: str, url: str, **spec: Any) -> dict:
        return self._create("elasticsearchconnections", "ElasticsearchConnection", name, {"url": url, **spec})

    def job(self, name: str, desired: str = "stopped", connection: str = "es", annotations: dict | None = None, **spec: Any) -> dict:
        body_spec = {"connectionRef": {"name": connection}, "desiredState": desired, **spec}
        return self._create("rollupjobs", "RollupJob", name, body_spec, annotations)

    def _create(self, plural: str, kind: str, name: str, spec: dict, annotations: dict | None = None) -> dict:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind,
                "metadata": {"name": name, "annotations": annotations or {}}, "spec": spec}
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, plural, body)

    def get(self, name: str, plural: str = "rollupjobs") -> dict:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, plural, name)

    def exists(self, name: str, plural: str = "rollupjobs") -> bool:
        try:
            self.get(name, plural)
            return True
        except ApiException as e:
            if e.status == 404:
                return False
            raise

    def patch(self, name: str, patch: dict, plural: str = "rollupjobs") -> dict:
        return self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.ns, plural, name, patch)

    def set_desired(self, name: str, desired: str) -> dict:
        return self.patch(name, {"spec": {"desiredState": desired}})

    def delete(self, name: str, plural: str = "rollupjobs") -> None:
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, plural, name)
        except ApiException as e:
            if e.status != 404:
                raise

    def events(self, name: str | None = None) -> list:
        evs = self.core.list_namespaced_event(self.ns).items
        if name:
            evs = [e for e in evs if e.involved_object.name == name]
        return sorted(evs, key=lambda e: (e.first_timestamp or e.event_time or 0, e.metadata.name))

    def event_reasons(self, name: str) -> list[str]:
        return [e.reason for e in self.events(name)]

    def wait_events(self, name: str, *reasons: str, timeout: float = 10) -> list[str]:
        """Wait until the events about ``name`` include ``reasons`` (a multiset); returns all reasons.

        Events are posted right after the status they describe, so a test that saw the status
        may have to wait a moment for the event."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.event_reasons(name)
            missing = list(reasons)
            for r in got:
                if r in missing:
                    missing.remove(r)
            if not missing:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"events for {name}: wanted {sorted(reasons)}, got {got}")
            time.sleep(0.1)

    # --- waiting --------------------------------------------------------------------------
    def wait(self, name: str, pred: Callable[[dict], bool], timeout: float = 30, what: str = "condition",
             plural: str = "rollupjobs") -> dict:
        deadline = time.monotonic() + timeout
        obj: dict = {}
        while True:
            try:
                obj = self.get(name, plural)
                if pred(obj):
                    return obj
            except ApiException as e:
                if e.status != 404:
                    raise
            if time.monotonic() > deadline:
                raise AssertionError(f"{plural}/{name}: timed out after {timeout}s waiting for {what}; last status:\n"
                                     f"{json.dumps(obj.get('status'), indent=1)}")
            time.sleep(0.1)

    def wait_ready(self, name: str, timeout: float = 30, **kw) -> dict:
        return self.wait(name, is_ready, timeout, "Ready=True at the current generation", **kw)

    def wait_reason(self, name: str, reason: str, timeout: float = 30, type_: str = "Ready", **kw) -> dict:
        def pred(o):
            return condition(o, type_).get("reason") == reason and (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"]
        return self.wait(name, pred, timeout, f"{type_} reason {reason}", **kw)

    def wait_gone(self, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.exists(name):
            if time.monotonic() > deadline:
                raise AssertionError(f"rollupjobs/{name} still exists after {timeout}s: {json.dumps(self.get(name).get('status'))}")
            time.sleep(0.1)


class OperatorProcess:
    """``rollup-operator run`` as a separate process, with the ServiceAccount's identity."""

    def __init__(self, kubeconfig: str, namespaces: list[str] | None = None, extra: list[str] | None = None,
                 env: dict | None = None, python: str | None = None):
        self.kubeconfig = kubeconfig
        self.python = python or sys.executable
        self.namespaces = namespaces or []
        self.extra = extra or []
        self.env = env or {}
        self.port = free_port()
        self.log_file = Path(tempfile.mkstemp(prefix="rollup-operator-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None

    def start(self, wait_ready: bool = True, timeout: float = 30) -> "OperatorProcess":
        cmd = [self.python, "-m", "rollup_operator.cli.main", "run", "--kubeconfig", self.kubeconfig,
               "--http-port", str(self.port), "--http-host", "127.0.0.1", "--log-level", "DEBUG"]
        for ns in self.namespaces:
            cmd += ["--namespace", ns]
        cmd += self.extra
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        env.pop("KUBECONFIG", None)
        self._log = open(self.log_file, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"operator exited with {self.proc.returncode}:\n{self.logs()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"operator not ready after {timeout}s:\n{self.logs()[-4000:]}")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return r.read().decode()

    def logs(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 15) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def alive(self) -> bool:
        return bool(self.proc) and self.proc.poll() is None


def create_error(cluster: Cluster, body: dict, plural: str = "rollupjobs") -> str:
    """Create ``body``, which the API server must refuse with 422; its message."""
    with pytest.raises(ApiException) as e:
        cluster.custom.create_namespaced_custom_object(GROUP, VERSION, cluster.ns, plural, body)
    assert e.value.status == 422, e.value.body
    return str(json.loads(e.value.body)["message"])
