"""The in-memory Kubernetes side of in-process tests: ``FakeKube`` (the calls of kube.Kube, statuses
kept the way server-side apply of the whole status leaves them), ``World`` (puts RollupJobs through
the controller as watch events would) and ``conn_body`` (an ElasticsearchConnection object)."""

from __future__ import annotations

import asyncio
import copy
import time

from rollup_operator.app.controller import Controller


class FakeKube:
    """The Kubernetes calls of kube.Kube, in memory. Statuses are applied whole."""

    def __init__(self):
        self.status: dict[tuple, dict] = {}
        self.events: list[tuple] = []
        self.writes = 0
        self.finalizers: dict[tuple, list] = {}
        self.connections: dict[tuple, dict] = {}
        self.status_workers = 16
        self.event_slots = asyncio.Semaphore(4)
        self.component, self.instance = "rollup-operator", "test"
        self.ctl: Controller | None = None
        self.bodies: dict[tuple, dict] = {}

    async def apply_status(self, kind, ns, name, status):
        await asyncio.sleep(0)
        self.writes += 1
        self.status[(kind, ns, name)] = copy.deepcopy(status)
        return {"metadata": {"resourceVersion": "0"}}

    async def set_finalizers(self, ns, name, finalizers, rv):
        self.writes += 1
        body = copy.deepcopy(self.bodies[(ns, name)])
        body["metadata"]["finalizers"] = finalizers
        body["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)
        self.bodies[(ns, name)] = body
        return body

    async def get_connection(self, ns, name):
        return self.connections.get((ns, name))

    async def get_secret(self, ns, name):  # the Secret object, labelled for connections (credentials.py)
        if name != "creds":
            return None
        return {"metadata": {"name": name, "namespace": ns, "labels": {"rollup.esops.dev/credentials": "true"}},
                "stringData": {"username": "elastic", "password": "pw"}}

    async def event_once(self, ref, type_, reason, message, *, name):
        self.events.append((ref["name"], type_, reason))

    async def create_event(self, ns, body):
        self.events.append((body["involvedObject"]["name"], body["type"], body["reason"]))
        return {**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}

    async def patch_event(self, ns, name, patch):  # a repeat, counted on the Event (event_recorder.py)
        ev = next((e for e in self.events if e[0] == name.rsplit(".", 1)[0]), None)
        self.events.append((name.rsplit(".", 1)[0], ev[1] if ev else "?", ev[2] if ev else "?"))
        return {"metadata": {"name": name}, **patch}

    def job(self, name, ns="ns"):
        return self.status.get(("RollupJob", ns, name), {})

    def ready(self, name):
        for c in self.job(name).get("conditions", []):
            if c["type"] == "Ready":
                return c["reason"]
        return None


def conn_body(url, *, max_requests=64, rv=1, generation=1, secret=False):
    spec = {"url": url, "syncInterval": "1s", "maxConcurrentRequests": max_requests}
    if secret:
        spec["auth"] = {"basic": {"secretRef": {"name": "creds"}}}
    return {"metadata": {"namespace": "ns", "name": "es", "generation": generation, "resourceVersion": str(rv)}, "spec": spec}


class World:
    def __init__(self, emu, kube, ctl):
        self.emu, self.kube, self.ctl = emu, kube, ctl
        self.rv = 10

    def put(self, name, desired, *, generation=1, **spec):
        self.rv += 1
        body = {"metadata": {"namespace": "ns", "name": name, "uid": f"u-{name}", "generation": generation,
                             "resourceVersion": str(self.rv), "finalizers": self.kube.bodies.get(("ns", name), {}).get("metadata", {}).get("finalizers", [])},
                "spec": {"connectionRef": {"name": "es"}, "desiredState": desired, **spec}}
        body["metadata"].update(spec.pop("_meta", {}) if "_meta" in spec else {})
        self.kube.bodies[("ns", name)] = body
        self.ctl.on_job_event("MODIFIED", copy.deepcopy(body))
        return body

    async def until(self, check, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return True
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out; statuses: {self.kube.status}, events: {self.kube.events}")
