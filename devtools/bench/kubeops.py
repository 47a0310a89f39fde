"""Bulk Kubernetes writes for the benchmark: namespaces, connections, many RollupJobs, flips.

Writes go through the official Python client from a pool of threads, each with its own client
(and connection pool), warmed up before the clock starts.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Callable, Iterable

from kubernetes import client
from kubernetes.client.rest import ApiException

from devtools.harness.apiserver import api_client

GROUP, VERSION = "rollup.esops.dev", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class Writers:
    """``threads`` threads, each with its own CustomObjectsApi on ``kubeconfig``."""

    def __init__(self, kubeconfig: str, threads: int = 16):
        self.kubeconfig = kubeconfig
        self.threads = threads
        self._local = threading.local()
        self._clients: list[client.ApiClient] = []
        self._lock = threading.Lock()
        self.pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="kube-writer")
        # warm every thread's client (TLS handshake, config parsing) before anything is timed
        barrier = threading.Barrier(threads)
        list(self.pool.map(lambda _: (self.custom(), barrier.wait(30)), range(threads)))

    def custom(self) -> client.CustomObjectsApi:
        c = getattr(self._local, "custom", None)
        if c is None:
            api = api_client(self.kubeconfig)
            with self._lock:
                self._clients.append(api)
            c = self._local.custom = client.CustomObjectsApi(api)
            c.get_api_resources(GROUP, VERSION)
        return c

    def map(self, fn: Callable, items: Iterable) -> list:
        return list(self.pool.map(fn, items))

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        for api in self._clients:
            api.close()


def ensure_namespace(api: client.ApiClient, ns: str) -> None:
    try:
        client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    except ApiException as e:
        if e.status != 409:
            raise


def create_connection(api: client.ApiClient, ns: str, name: str, url: str, sync_interval: str) -> None:
    body = {"apiVersion": API_VERSION, "kind": "ElasticsearchConnection", "metadata": {"name": name},
            "spec": {"url": url, "syncInterval": sync_interval}}
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, ns, "elasticsearchconnections", body)


def create_jobs(w: Writers, ns: str, jobs: list[tuple[str, str, str]]) -> float:
    """Create RollupJobs ``(name, connection, desired)``; returns the seconds it took."""
    def one(j):
        name, conn, desired = j
        body = {"apiVersion": API_VERSION, "kind": "RollupJob", "metadata": {"name": name},
                "spec": {"connectionRef": {"name": conn}, "desiredState": desired}}
        w.custom().create_namespaced_custom_object(GROUP, VERSION, ns, "rollupjobs", body)
    t0 = time.monotonic()
    w.map(one, jobs)
    return time.monotonic() - t0


def flip(w: Writers, ns: str, names: list[str], desired: str) -> dict[str, tuple[float, float, int]]:
    """Patch ``spec.desiredState`` of every job at once: {name: (t_sent, t_acked, new generation)}."""
    def one(name):
        t0 = time.monotonic()
        obj = w.custom().patch_namespaced_custom_object(GROUP, VERSION, ns, "rollupjobs", name,
                                                        {"spec": {"desiredState": desired}})
        return name, (t0, time.monotonic(), obj["metadata"]["generation"])
    return dict(w.map(one, names))
