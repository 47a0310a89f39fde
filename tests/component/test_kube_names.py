"""Issue 20 finding 1: a name a tenant writes can never walk out of its namespace's request path.

Three layers, each tested on its own: the spec parser refuses the name (InvalidConnection /
InvalidSpec naming the field, not the value), the Kubernetes client refuses it before any request
(checked against a real HTTP server that records every path it is asked for), and the transport
refuses a path with an encoded dot segment or slash.
"""

import asyncio
import json

import httpx2
import pytest
from aiohttp import web
from lightkube import KubeConfig

from rollup_operator.kube import names as kube_names
from rollup_operator.kube.client import Kube, KubeError
from rollup_operator.kube.transport import AiohttpTransport
from rollup_operator.job.config import InvalidSpec
from rollup_operator.job.connection_spec import connection_spec_from_body
from rollup_operator.job.spec import job_spec_from_body
from rollup_operator.migration.runner import Migrations

TRAVERSALS = ["..", ".", "../x", "../../o/secrets/es-creds", "a/../../b/secrets/c", "%2e%2e", "%2E%2E/x", "a%2Fb",
              "a/b", "x/", "/x", "A", "a b", "a\\b", "-a", "a-", "x" * 254, ""]


@pytest.mark.parametrize("name", TRAVERSALS)
def test_traversal_names_are_not_object_names(name):
    assert not kube_names.is_object_name(name)


@pytest.mark.parametrize("name", ["es-creds", "a", "a.b", "0x", "my-secret.v2", "x" * 253])
def test_kubernetes_names_are_object_names(name):
    assert kube_names.is_object_name(name)


def _conn(auth=None, tls=None):
    spec = {"url": "https://es:9200"}
    if auth:
        spec["auth"] = auth
    if tls:
        spec["tls"] = tls
    return {"metadata": {"name": "c", "namespace": "t"}, "spec": spec}


@pytest.mark.parametrize("field,body", [
    ("spec.auth.basic.secretRef.name", lambda n: _conn(auth={"basic": {"secretRef": {"name": n}}})),
    ("spec.auth.apiKey.secretRef.name", lambda n: _conn(auth={"apiKey": {"secretRef": {"name": n}}})),
    ("spec.tls.caSecretRef.name", lambda n: _conn(tls={"caSecretRef": {"name": n}})),
])
@pytest.mark.parametrize("name", ["../../o/secrets/es-creds", "a/../../b/secrets/c", "%2e%2e", "x/"])
def test_a_connection_naming_a_traversal_secret_is_invalid_naming_the_field(field, body, name):
    with pytest.raises(InvalidSpec) as e:
        connection_spec_from_body(body(name))
    assert field in str(e.value) and name not in str(e.value)


def test_a_job_whose_connection_ref_is_a_traversal_is_invalid():
    body = {"metadata": {"name": "j", "namespace": "t", "generation": 1},
            "spec": {"connectionRef": {"name": "../../o/elasticsearchconnections/es"}, "desiredState": "stopped"}}
    with pytest.raises(InvalidSpec, match="spec.connectionRef.name is not a valid object name"):
        job_spec_from_body(body)


@pytest.fixture
def sent() -> list[tuple[str, str, str]]:
    """Every request recording_apiserver receives: method, raw path, body."""
    return []


@pytest.fixture
async def recording_apiserver(sent):
    """A plain HTTP server on 127.0.0.1 that records every path asked of it and answers with a Secret."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.raw_path)
        sent.append((request.method, request.raw_path, await request.text()))
        return web.json_response({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "es-creds", "namespace": "t"},
                                  "data": {}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    config = KubeConfig.from_dict({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "t"}}]})
    kube = Kube(config)
    try:
        yield kube, seen
    finally:
        await kube.close()
        await runner.cleanup()


@pytest.mark.parametrize("name", ["../../o/secrets/es-creds", "a/../../b/secrets/c", "..", "%2e%2e", "a%2Fb", "x/"])
async def test_kube_never_requests_a_traversal_name(recording_apiserver, name):
    kube, seen = recording_apiserver
    for call in (kube.get_secret, kube.get_connection):
        with pytest.raises(KubeError) as e:
            await call("t", name)
        assert e.value.status == 422 and name not in e.value.message
    assert seen == []


async def test_kube_asks_for_exactly_the_named_secret_in_its_namespace(recording_apiserver):
    kube, seen = recording_apiserver
    assert (await kube.get_secret("t", "es-creds"))["metadata"]["name"] == "es-creds"
    assert seen == ["/api/v1/namespaces/t/secrets/es-creds"]


@pytest.mark.parametrize("spec", [
    {"jobRef": {"name": "../../o/rollupjobs/theirs"}},
    {"jobId": "theirs", "connectionRef": {"name": "../../o/elasticsearchconnections/es"}},
    {"jobId": "..", "connectionRef": {"name": "es"}},
])
async def test_a_migration_naming_a_traversal_sends_nothing_but_its_own_status(recording_apiserver, sent, spec):
    """With the CRD's rules bypassed, a RollupMigration (migration/runner.py) whose spec names a
    traversal asks for no object and no connection: its pass writes its own status (Stalled
    InvalidSpec, naming the field) and its Warning Event, in its own namespace, and nothing else."""
    kube, seen = recording_apiserver
    asked: list[tuple[str, str]] = []

    async def connection_of(namespace, name):
        asked.append((namespace, name))
        return None

    def owner_of(job_id, clusters):
        raise AssertionError("no ownership question for a spec that cannot be acted on")

    body = {"metadata": {"name": "m", "namespace": "t", "uid": "u-1", "generation": 1},
            "spec": {"targetDataStream": "metrics-sensor", **spec}}
    assert await Migrations(kube, connection_of, owner_of, poll=1).reconcile(body) is False  # no poll: a spec change wakes it
    assert asked == []
    status_path = "/apis/rollup.esops.dev/v1alpha1/namespaces/t/rollupmigrations/m/status"
    assert seen[0].startswith(status_path) and all(p.startswith((status_path, "/api/v1/namespaces/t/events")) for p in seen), seen
    status = json.loads(sent[0][2])["status"]
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "InvalidSpec", stalled
    field = "spec.jobRef.name" if "jobRef" in spec else "spec.connectionRef.name" if ".." not in spec.get("jobId", "") else "spec.jobId"
    assert stalled["message"].startswith(field) and "theirs" not in stalled["message"] and "/o/" not in stalled["message"]
    assert any(m == "POST" and "/events" in p and "InvalidSpec" in b for m, p, b in sent), sent


@pytest.mark.parametrize("path", ["/api/v1/namespaces/t/secrets/%2e%2e/%2e%2e/o/secrets/x", "/api/v1/namespaces/t/secrets/a%2Fb",
                                  "/api/v1/namespaces/t/secrets/.%2E/x", "/api/v1/namespaces/t/secrets/a%5cb"])
def test_the_transport_refuses_encoded_dot_segments_and_slashes(path):
    transport = AiohttpTransport(None)
    request = httpx2.Request("GET", f"http://127.0.0.1:9/{path.lstrip('/')}")
    with pytest.raises(httpx2.UnsupportedProtocol):
        asyncio.run(transport.handle_async_request(request))
