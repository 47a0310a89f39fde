"""Observation helpers for the fault suite: what the emulator, the operator and the API server did, when.

All times are wall-clock ``time.time()``, the clock the emulator's request log uses, so events
from the three sides can be ordered against each other on this one machine.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.support import GROUP, VERSION, condition
from tests.support.waiting import wait_for  # noqa: F401 - the fault tests import it from here


def connect(cluster, emu, name: str = "es", **spec: Any) -> None:
    spec.setdefault("syncInterval", "2s")
    cluster.connection(name, emu.url, **spec)


def calls(emu, job_id: str, action: str) -> list:
    """POST _start/_stop records for one job, in arrival order."""
    return [r for r in emu.requests(method="POST") if r.path == f"/_rollup/job/{job_id}/_{action}"]


def reason(obj: dict, type_: str = "Ready") -> str | None:
    return condition(obj, type_).get("reason")


def conditions_summary(obj: dict) -> tuple:
    """(Ready status, Reconciling status, Stalled status, Ready reason)."""
    return (condition(obj, "Ready").get("status"), condition(obj, "Reconciling").get("status"),
            condition(obj, "Stalled").get("status"), reason(obj))


class StateLog:
    """The emulator's job state transitions, recorded by a listener inside the emulator.

    A node restart (``emu.restart()``) changes states without transitions; it is not in the log.
    """

    def __init__(self, emu):
        self.emu = emu
        self.events: list[tuple[float, str, str, str]] = []  # (time, job id, old, new)

        def listener(job, old, new):
            self.events.append((time.time(), job.id, old, new))

        self._listener = listener
        emu.loop_thread.call(lambda: emu.emulator.cluster.listeners.append(listener))

    def first(self, job_id: str, new: str) -> float | None:
        return next((t for t, j, _, n in self.events if j == job_id and n == new), None)

    def states(self, job_id: str) -> list[str]:
        return [n for _, j, _, n in self.events if j == job_id]

    def close(self) -> None:
        try:
            self.emu.loop_thread.call(lambda: self.emu.emulator.cluster.listeners.remove(self._listener))
        except Exception:  # noqa: BLE001 - the emulator may already be closed
            pass


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels`` (Prometheus text format)."""
    total = 0.0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def es_requests(op, **labels: str) -> float:
    """Elasticsearch requests the operator made (``_count`` of the request histogram)."""
    return metric(op.metrics(), "rollup_operator_elasticsearch_request_duration_seconds_count", **labels)


class Watch:
    """A background watch on one kind in one namespace, recording every event with its arrival time.

    Reconnects on errors (e.g. the API server restarting) from the last resourceVersion seen.
    """

    def __init__(self, kubeconfig: str, namespace: str, plural: str = "rollupjobs"):
        from devtools.harness.apiserver import api_client

        self.api = api_client(kubeconfig)  # its own connection pool: a stream holds a connection
        self.custom = client.CustomObjectsApi(self.api)
        self.ns, self.plural = namespace, plural
        self.events: list[tuple[float, str, dict]] = []
        self._stop = threading.Event()
        self._w: watch.Watch | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"watch {plural}")
        self._thread.start()
        self._started.wait(10)

    def _run(self) -> None:
        rv = None
        while not self._stop.is_set():
            self._w = watch.Watch()
            try:
                kw = {"timeout_seconds": 120}
                if rv:
                    kw["resource_version"] = rv
                else:
                    lst = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, self.plural)
                    rv = lst["metadata"]["resourceVersion"]
                    now = time.time()
                    for o in lst["items"]:
                        self.events.append((now, "LISTED", o))
                    kw["resource_version"] = rv
                    self._started.set()
                for ev in self._w.stream(self.custom.list_namespaced_custom_object, GROUP, VERSION, self.ns,
                                         self.plural, **kw):
                    obj = ev["object"]
                    if ev["type"] == "ERROR":
                        rv = None if obj.get("code") == 410 else rv
                        break
                    self.events.append((time.time(), ev["type"], obj))
                    rv = obj["metadata"]["resourceVersion"]
                    if self._stop.is_set():
                        break
            except Exception:  # noqa: BLE001 - reconnect
                if self._stop.is_set():
                    break
                time.sleep(0.2)

    def of(self, name: str) -> list[tuple[float, str, dict]]:
        return [(t, ty, o) for t, ty, o in self.events if o["metadata"]["name"] == name]

    def deleted_at(self, name: str) -> float | None:
        return next((t for t, ty, _ in self.of(name) if ty == "DELETED"), None)

    def statuses(self, name: str, since: float = 0.0, until: float = float("inf")) -> list[tuple[float, dict]]:
        """Distinct stored versions of the object seen in [since, until] (time, object)."""
        out, seen = [], set()
        for t, ty, o in self.of(name):
            rv = o["metadata"]["resourceVersion"]
            if since <= t <= until and rv not in seen and ty != "DELETED":
                seen.add(rv)
                out.append((t, o))
        return out

    def close(self) -> None:
        self._stop.set()
        if self._w is not None:
            self._w.stop()
        self._thread.join(5)
        self.api.close()


def exists(cluster, name: str) -> bool:
    try:
        cluster.get(name)
        return True
    except ApiException as e:
        if e.status == 404:
            return False
        raise
