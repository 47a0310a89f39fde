"""Scenarios 11-14 (issue 12): a hostile or careless user, on the real API server, with the operator
as its own process under the RBAC of manifests/.

11 tenant isolation: Secrets opt in; key names, values and foreign bodies never shown; http:// warned once;
   a missing Secret and an unlabelled one look the same (no existence oracle).
12 malformed 200 answers: never "absent", never a create, never a stale Ready=True; int64 stats clamped.
13 odd bytes in a Secret: InvalidConnection naming Secret and key, no traceback loop.
14 job ids: what cannot address exactly one job is refused at admission; every other id is
   percent-encoded into one path segment (checked on the emulator's raw request log).
"""

from __future__ import annotations

import copy
import json
import re
import time
import urllib.parse

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.support import GROUP, VERSION, Cluster, condition

from .tools import conditions_summary

pytestmark = pytest.mark.apiserver

CONNS = "elasticsearchconnections"
RETRYING = ("False", "True", "False")  # Ready, Reconciling, Stalled
STALLED = ("False", "False", "True")
CONFIG = {"indexPattern": "rollup-source", "rollupIndex": "rollup-target", "cron": "*/30 * * * * ?", "pageSize": 1000,
          "groups": {"dateHistogram": {"field": "timestamp", "fixedInterval": "1h"}},
          "metrics": [{"field": "value", "metrics": ["min", "max", "sum"]}]}


def _wait(cluster, name, pred, timeout, plural="rollupjobs"):
    """(object, None) once ``pred`` holds, else (last object, why not)."""
    deadline, obj = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        try:
            obj = cluster.get(name, plural)
            if pred(obj):
                return obj, None
        except ApiException:
            pass
        time.sleep(0.1)
    return obj, f"{plural}/{name}: timed out after {timeout}s; status {json.dumps(obj.get('status'))[:400]}"


def _reason_is(reason):
    return lambda o: (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"] \
        and condition(o, "Ready").get("reason") == reason


def _everything_said(cluster, *names) -> str:
    """Every status and Event message about these objects, as one text."""
    parts = []
    for n in names:
        for plural in ("rollupjobs", CONNS):
            try:
                parts.append(json.dumps(cluster.get(n, plural).get("status")))
            except ApiException:
                pass
        parts += [f"{e.reason}: {e.message}" for e in cluster.events(n)]
    return "\n".join(parts)


def _tracebacks(op) -> int:
    return op.logs().count("Traceback")


# --- 11 -------------------------------------------------------------------------------------------


def _tenant(cluster) -> Cluster:
    """The test namespace as user "tenant" (impersonated): may create ElasticsearchConnections and
    RollupJobs and read them, may not read Secrets (checked: 403)."""
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    rbac.create_namespaced_role(cluster.ns, {"metadata": {"name": "tenant"}, "rules": [
        {"apiGroups": [GROUP], "resources": ["elasticsearchconnections", "rollupjobs"], "verbs": ["create", "get", "list", "watch"]}]})
    rbac.create_namespaced_role_binding(cluster.ns, {
        "metadata": {"name": "tenant"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant"},
        "subjects": [{"kind": "User", "name": "tenant", "apiGroup": "rbac.authorization.k8s.io"}]})
    api = client.ApiClient(copy.copy(cluster.api.configuration))
    api.set_default_header("Impersonate-User", "tenant")
    as_tenant = Cluster(api, cluster.ns)
    deadline = time.monotonic() + 10
    while True:  # the binding reaches the authorizer's cache within moments
        try:
            as_tenant.custom.list_namespaced_custom_object(GROUP, VERSION, cluster.ns, CONNS)
            break
        except ApiException as e:
            if e.status != 403 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    with pytest.raises(ApiException) as denied:
        as_tenant.core.read_namespaced_secret("sa-token", cluster.ns)
    assert denied.value.status == 403
    return as_tenant



def test_tenant_isolation(cluster, emulator, operator, report):
    ns = cluster.ns
    # A server the tenant runs (it accepts the leaked credentials, so a leak shows in its log).
    collector = emulator(auto_trigger=False, users={"op": {"password": "TENANT-CANNOT-READ-THIS", "privileges": ["all"]}})
    collector.add_job("j", state="stopped")
    # A service of the cluster network that is not Elasticsearch, answering every request with a page.
    foreign = emulator(auto_trigger=False, not_elasticsearch=True)
    foreign.fail_next(10**6, status=500, body="INTERNAL-ONLY db_password=hunter2 kubelet-token=abc123")
    plain = emulator(auto_trigger=False, users={"op": {"password": "plain-pw", "privileges": ["all"]}})
    plain.add_job("j", state="stopped")

    cluster.secret("sa-token", {"username": "op", "password": "TENANT-CANNOT-READ-THIS"}, allowed=False)
    tenant = _tenant(cluster)  # may create connections and jobs here, gets 403 on Secrets
    cluster.secret("labelled", {"ca.crt": "x", "token": "y"})
    cluster.secret("plain-creds", {"username": "op", "password": "plain-pw"})
    basic = lambda s, **k: {"basic": {"secretRef": {"name": s}, **k}}  # noqa: E731
    tenant.connection("c-steal", collector.url, auth=basic("sa-token"), syncInterval="1s")
    cluster.connection("c-guess", collector.url, auth=basic("labelled", usernameKey="token", passwordKey="guess"), syncInterval="1s")
    cluster.connection("c-proxy", foreign.url, syncInterval="1s")
    cluster.connection("c-plain", plain.url, auth=basic("plain-creds"), syncInterval="1s")
    tenant.job("j-steal", "stopped", connection="c-steal", jobId="j")
    for job, conn in (("j-guess", "c-guess"), ("j-proxy", "c-proxy"), ("j-plain", "c-plain")):
        cluster.job(job, "stopped", connection=conn, jobId="j")
    t0 = time.monotonic()
    op = operator()

    # a. a Secret without the opt-in label: nothing is sent anywhere
    row = report("11a. tenant (403 on get secrets) names an unlabelled Secret in a connection to its own server",
                 "SecretNotAllowed (Stalled) on connection and job naming the Secret; 0 requests reach the server")
    problems = []
    for name, plural in (("c-steal", CONNS), ("j-steal", "rollupjobs")):
        obj, err = _wait(cluster, name, _reason_is("SecretNotAllowed"), 30, plural)
        if err:
            problems.append(err)
        elif f"Secret {ns}/sa-token" not in condition(obj, "Ready")["message"] or conditions_summary(obj)[:3] != STALLED:
            problems.append(f"{name}: {condition(obj, 'Ready')}")
    time.sleep(3)  # three more syncs
    sent = collector.requests()
    leaked = [r for r in sent if r.user == "op"]
    row.num(seconds=round(time.monotonic() - t0, 1), requests_to_tenant_server=len(sent), authenticated_as_op=len(leaked))
    if sent:
        problems.append(f"{len(sent)} requests reached the tenant's server ({len(leaked)} with the Secret's credentials)")
    row.check(not problems, "; ".join(problems))

    # b. a labelled Secret and a guessed key: the other key names are not told
    row_b = report("11b. connection names a missing key of a labelled Secret",
                   "SecretKeyNotFound naming only the Secret and the asked key, not the Secret's other keys")
    obj, err = _wait(cluster, "c-guess", _reason_is("SecretKeyNotFound"), 20, CONNS)
    msg = condition(obj, "Ready").get("message", "")
    said = _everything_said(cluster, "c-guess", "j-guess")
    row_b.num(message=msg)
    row_b.check(not err and f"Secret {ns}/labelled has no key" in msg and "ca.crt" not in said,
                err or f"message {msg!r}; said about it: {said[:300]!r}")

    # c. the operator as a read-through proxy: the foreign body is never repeated
    row_c = report("11c. connection URL points at a service that is not Elasticsearch (500 with a body)",
                   "NotElasticsearch; its body appears in no status and no Event")
    obj, err = _wait(cluster, "c-proxy", _reason_is("NotElasticsearch"), 20, CONNS)
    _wait(cluster, "j-proxy", _reason_is("NotElasticsearch"), 10)
    time.sleep(2)
    said = _everything_said(cluster, "c-proxy", "j-proxy")
    hits = [s for s in ("hunter2", "INTERNAL-ONLY", "abc123") if s in said]
    row_c.num(requests_to_service=foreign.count(), message=condition(obj, "Ready").get("message", "")[:120])
    row_c.check(not err and not hits, err or f"foreign body repeated: {hits}")

    # d. credentials over plain http://: one Warning Event
    row_d = report("11d. credentials sent over plain http://", "the connection works; exactly one Warning InsecureTransport "
                                                               "Event however many syncs (1 s apart)")
    _, err = _wait(cluster, "c-plain", _reason_is("Connected"), 20, CONNS)
    time.sleep(4)
    warnings = [e for e in cluster.events("c-plain") if e.reason == "InsecureTransport"]
    row_d.num(insecure_events=len(warnings), event_count=sum(e.count or 1 for e in warnings),
              syncs=plain.count(path="/_rollup/job/_all"))
    ok_d = not err and len(warnings) == 1 and warnings[0].type == "Warning" and (warnings[0].count or 1) == 1 \
        and "plain HTTP" in warnings[0].message
    row_d.check(ok_d, err or f"{[(e.type, e.count, e.message) for e in warnings]}")

    logs = op.logs()
    secrets_in_logs = [s for s in ("TENANT-CANNOT-READ-THIS", "plain-pw", "hunter2") if s in logs]
    assert not secrets_in_logs, secrets_in_logs
    assert op.alive() and _tracebacks(op) == 0
    assert row.result == "PASS" and row_b.result == "PASS" and row_c.result == "PASS" and row_d.result == "PASS", \
        [r.result for r in (row, row_b, row_c, row_d)]


def _seen_by_tenant(tenant, cluster, name) -> tuple[str, list]:
    """A connection's status without its timestamps (as the tenant reads it), and its Events."""
    status = copy.deepcopy(tenant.get(name, CONNS).get("status") or {})
    for c in status.get("conditions") or []:
        c.pop("lastTransitionTime", None)
    return json.dumps(status, sort_keys=True), [(e.type, e.reason, e.message, e.count) for e in cluster.events(name)]


def test_a_missing_secret_and_an_unlabelled_one_look_the_same(cluster, emulator, operator, report):
    """11e. Whoever may write connections but not read Secrets cannot learn whether a Secret exists:
    a connection naming a Secret that does not exist and one naming the same Secret, unlabelled, once
    it exists, have byte-identical statuses (timestamps aside) and Events; and the first connection's
    status does not move when the Secret appears."""
    ns = cluster.ns
    server = emulator(auto_trigger=False, users={"op": {"password": "PROBE-PW", "privileges": ["all"]}})
    tenant = _tenant(cluster)
    auth = {"basic": {"secretRef": {"name": "probe"}}}
    row = report("11e. tenant (403 on get secrets) names a Secret that does not exist, then the same Secret exists unlabelled",
                 "the two connections' statuses (conditions, lastError, timestamps aside) and Events are byte-identical; "
                 "the first does not change when the Secret is created; 0 requests reach the server")
    tenant.connection("c-missing", server.url, auth=auth, syncInterval="1s")
    op = operator()
    settled = lambda o: (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"] \
        and condition(o, "Ready").get("status") == "False"  # noqa: E731
    _, err = _wait(cluster, "c-missing", settled, 30, CONNS)
    assert not err, err
    time.sleep(1.5)  # its first Event is posted after the status
    missing = _seen_by_tenant(tenant, cluster, "c-missing")

    cluster.secret("probe", {"username": "op", "password": "PROBE-PW"}, allowed=False)
    tenant.connection("c-unlabelled", server.url, auth=auth, syncInterval="1s")
    _, err = _wait(cluster, "c-unlabelled", settled, 30, CONNS)
    assert not err, err
    time.sleep(3)  # three more syncs of both, with the Secret in place
    unlabelled = _seen_by_tenant(tenant, cluster, "c-unlabelled")
    missing_after = _seen_by_tenant(tenant, cluster, "c-missing")

    reason = condition(tenant.get("c-missing", CONNS), "Ready")
    row.num(reason=reason.get("reason"), message=reason.get("message"), requests_to_server=server.count())
    problems = []
    if missing[0] != unlabelled[0]:
        problems.append(f"statuses differ: missing {missing[0]} vs unlabelled {unlabelled[0]}")
    if missing[1] != unlabelled[1]:
        problems.append(f"Events differ: missing {missing[1]} vs unlabelled {unlabelled[1]}")
    if missing_after != missing:
        problems.append(f"c-missing moved when the Secret was created: {missing} -> {missing_after}")
    if reason.get("reason") != "SecretNotAllowed" or reason.get("message") != (
            f"Secret {ns}/probe does not exist or is not labelled rollup.esops.dev/credentials=true; "
            "an ElasticsearchConnection may only use Secrets that opt in with this label"):
        problems.append(f"Ready condition {reason}")
    if server.count():
        problems.append(f"{server.count()} requests reached the server")
    row.check(not problems, "; ".join(problems))
    # the operator's log (INFO) does not tell either: no line about the Secret (before: a request line each
    # sync, "404 Not Found" while missing and "200 OK" once created)
    about_secret = [line for line in op.logs().splitlines() if "secrets/probe" in line]
    row.num(log_lines_about_the_secret=len(about_secret))
    assert "PROBE-PW" not in op.logs() and op.alive() and _tracebacks(op) == 0
    assert not about_secret, about_secret[:4]
    assert not problems, problems


# --- 12 -------------------------------------------------------------------------------------------


def test_malformed_answers_are_not_trusted(cluster, emulator, operator, report):
    e_empty, e_state, e_big, e_version = (emulator(auto_trigger=False) for _ in range(4))
    e_empty.add_job("m1", state="stopped")  # exists, with the config spec.config asks for
    e_empty.fail_next(10**6, status=200, method="GET", path="/_rollup/job/_all", body={})
    e_state.add_job("s1", state="started")
    bad_state = e_state.get_job("s1")
    bad_state["status"]["job_state"] = "failed"
    e_big.add_job("b1", state="stopped")
    e_version.add_job("v1", state="stopped")
    e_version.fail_next(10**6, status=200, method="GET", path="/", body={"version": {"number": 8}, "tagline": "You Know, for Search"})
    for name, emu in (("c-empty", e_empty), ("c-state", e_state), ("c-big", e_big), ("c-version", e_version)):
        cluster.connection(name, emu.url, syncInterval="1s")
    cluster.job("j-empty", "stopped", connection="c-empty", jobId="m1", config=CONFIG)
    cluster.job("j-state", "started", connection="c-state", jobId="s1")
    cluster.job("j-version", "stopped", connection="c-version", jobId="v1")
    op = operator()
    t0 = time.monotonic()

    row_a = report("12a. GET _rollup/job/_all answers {} for a managed job that exists",
                   "UnexpectedResponse (Reconciling, Ready=False), no PUT; Ready once the answers are right again")
    obj, err = _wait(cluster, "j-empty", _reason_is("UnexpectedResponse"), 30)
    t_reason = time.monotonic() - t0
    time.sleep(3)
    puts = e_empty.count(method="PUT")
    problems = [err] if err else []
    if puts:
        problems.append(f"{puts} PUT sent")
    if not err and conditions_summary(obj)[:3] != RETRYING:
        problems.append(f"conditions {conditions_summary(obj)}")
    e_empty.clear_faults()
    t1 = time.monotonic()
    _, err2 = _wait(cluster, "j-empty", lambda o: _reason_is("Stopped")(o) and condition(o, "Ready")["status"] == "True", 30)
    if err2:
        problems.append(err2)
    row_a.num(puts=puts, seconds_to_reason=round(t_reason, 1), ready_after_fix_s=round(time.monotonic() - t1, 1),
              message=condition(obj, "Ready").get("message", "")[:100])
    row_a.check(not problems, "; ".join(problems))

    row_b = report("12b. a job_state outside the enum ('failed')",
                   "UnexpectedResponse naming the state; never reported as Aborting; no call sent; no stale Ready=True")
    cluster.wait_ready("j-state", 20)
    e_state.fail_next(10**6, status=200, method="GET", path="/_rollup/job/_all", body={"jobs": [bad_state]})
    t2 = time.monotonic()
    obj, err = _wait(cluster, "j-state", _reason_is("UnexpectedResponse"), 20)
    time.sleep(2)
    obj = cluster.get("j-state")
    msg = condition(obj, "Ready").get("message", "")
    calls = e_state.count(method="POST")
    row_b.num(seconds_to_reason=round(time.monotonic() - t2 - 2, 1), posts=calls, jobState=obj["status"].get("jobState"), message=msg[:110])
    row_b.check(not err and "[failed]" in msg and condition(obj, "Ready")["status"] == "False"
                and obj["status"].get("jobState") != "aborting" and calls == 0,
                err or f"{obj['status']}, posts={calls}")

    row_c = report("12c. stats above int64 (2**70 and 1e400)",
                   "the job's status is still written (Ready=True, stats clamped to 2**63-1)")
    big = e_big.get_job("b1")
    raw = json.dumps({"jobs": [big]}).replace('"pages_processed": 0', '"pages_processed": 1e400').replace(
        '"documents_processed": 0', f'"documents_processed": {2**70}')
    assert "1e400" in raw and str(2**70) in raw, raw
    e_big.fail_next(10**6, status=200, method="GET", path="/_rollup/job/_all", body=raw.encode())
    cluster.job("j-big", "stopped", connection="c-big", jobId="b1")
    obj, err = _wait(cluster, "j-big", lambda o: _reason_is("Stopped")(o) and (o["status"].get("stats") or {}).get("pagesProcessed"), 30)
    stats = (obj.get("status") or {}).get("stats") or {}
    row_c.num(pagesProcessed=stats.get("pagesProcessed"), documentsProcessed=stats.get("documentsProcessed"))
    row_c.check(not err and stats.get("pagesProcessed") == 2**63 - 1 and stats.get("documentsProcessed") == 2**63 - 1,
                err or f"stats {stats}")

    row_d = report("12d. GET / answers a version that is not a string",
                   "connection Ready=False UnexpectedResponse with a description (and its jobs not Ready); no traceback")
    obj, err = _wait(cluster, "c-version", _reason_is("UnexpectedResponse"), 20, CONNS)
    jobj, jerr = _wait(cluster, "j-version", lambda o: condition(o, "Ready").get("status") == "False"
                       and (o.get("status") or {}).get("observedGeneration") == 1, 10)
    msg = condition(obj, "Ready").get("message", "")
    row_d.num(message=msg[:100], job_reason=condition(jobj, "Ready").get("reason"), tracebacks=_tracebacks(op))
    row_d.check(not err and not jerr and "version.number is a number" in msg and _tracebacks(op) == 0, err or jerr or msg)

    assert op.alive() and _tracebacks(op) == 0, op.logs()[-3000:]
    rows = (row_a, row_b, row_c, row_d)
    assert all(r.result == "PASS" for r in rows), [r.result for r in rows]


# --- 13 -------------------------------------------------------------------------------------------


def test_odd_bytes_in_secrets(cluster, emulator, operator, report):
    ns = cluster.ns
    emu = emulator(auto_trigger=False, users={"op": {"password": "pw", "privileges": ["all"]}})
    emu.add_job("j", state="stopped")
    cases = [  # (suffix, auth, Secret raw data, key named in the message)
        ("nonutf8", {"basic": {"secretRef": {"name": "s-nonutf8"}}}, {"username": b"op", "password": b"\xff\xfepw-SECRET"}, "password"),
        ("crlf", {"apiKey": {"secretRef": {"name": "s-crlf"}}}, {"api_key": b"abc\r\nX-Injected: SECRET"}, "api_key"),
        ("nul", {"basic": {"secretRef": {"name": "s-nul"}}}, {"username": b"op", "password": b"pw\x00SECRET"}, "password"),
        ("lf-user", {"basic": {"secretRef": {"name": "s-lf-user"}}}, {"username": b"op\nSECRET", "password": b"pw"}, "username"),
    ]
    for suffix, auth, raw, _ in cases:
        cluster.secret(f"s-{suffix}", {}, raw=raw)
        cluster.connection(f"c-{suffix}", emu.url, auth=auth, syncInterval="1s")
        cluster.job(f"j-{suffix}", "stopped", connection=f"c-{suffix}", jobId="j")
    t0 = time.monotonic()
    op = operator()
    rows, failures = [], []
    for suffix, _, raw, key in cases:
        row = report(f"13. Secret value with odd bytes ({suffix})",
                     f"InvalidConnection (Stalled) on connection and job naming Secret s-{suffix} and key {key!r}; value never shown")
        problems = []
        for name, plural in ((f"c-{suffix}", CONNS), (f"j-{suffix}", "rollupjobs")):
            obj, err = _wait(cluster, name, _reason_is("InvalidConnection"), 30, plural)
            if err:
                problems.append(err)
                continue
            msg = condition(obj, "Ready")["message"]
            if f"Secret {ns}/s-{suffix} key '{key}'" not in msg or conditions_summary(obj)[:3] != STALLED:
                problems.append(f"{name}: {conditions_summary(obj)} {msg!r}")
        row.num(seconds=round(time.monotonic() - t0, 1), message=msg[:120] if not problems else "")
        rows.append(row)
        failures += problems
        row.check(not problems, "; ".join(problems))
    time.sleep(5)  # five more syncs: still no traceback, no request with the odd value
    said = _everything_said(cluster, *[f"{p}-{s}" for s, *_ in cases for p in ("c", "j")])
    summary = report("13. odd bytes, 5 s later", "0 tracebacks in the operator log, 0 requests sent with these Secrets, "
                                                 "no value in status/events")
    tb, sent = _tracebacks(op), emu.count()
    summary.num(tracebacks=tb, requests=sent)
    summary.check(tb == 0 and sent == 0 and "SECRET" not in said, f"tracebacks={tb} requests={sent}")
    assert op.alive() and "SECRET" not in op.logs()
    assert not failures and summary.result == "PASS", failures


# --- 14 -------------------------------------------------------------------------------------------

REFUSED_IDS = {".": "'.' or '..'", "..": "'.' or '..'", "_all": "'_all'", "a\x00b": "control characters",
               "a\x07b": "control characters"}
ODD_IDS = ["a.b", "...", "x..", ".hidden", "100%", "a%41b", "a?b", "a#b", "a+b", "a;b", "a&b=c", "ü-ñ", "~x", "all"]
# One RFC 3986 path segment (pchar): unreserved, %XX, sub-delims, ':' and '@'. '/', '?', '#', space,
# control and non-ASCII characters must arrive percent-encoded. (The client's URL library leaves the
# sub-delims ';', '&', '=' literal, which is legal in a segment and decodes to the same id.)
_ENCODED_SEGMENT = re.compile(r"[A-Za-z0-9._~%!$&'()*+,;=:@-]+")


def test_job_ids(cluster, emulator, operator, report):
    row = report("14a. jobId '.', '..', '_all', NUL, BEL", "refused at admission (422) with a message saying why")
    refused = {}
    for jid, why in REFUSED_IDS.items():
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RollupJob", "metadata": {"name": "bad"},
                "spec": {"connectionRef": {"name": "es"}, "desiredState": "stopped", "jobId": jid}}
        try:
            cluster.custom.create_namespaced_custom_object(GROUP, VERSION, cluster.ns, "rollupjobs", body)
            cluster.delete("bad")
            refused[jid] = "admitted"
        except ApiException as e:
            msg = json.loads(e.body).get("message", "")
            refused[jid] = "ok" if e.status == 422 and why in msg else f"{e.status} {msg[:120]}"
    bad = {repr(k): v for k, v in refused.items() if v != "ok"}
    row.num(refused=f"{sum(v == 'ok' for v in refused.values())}/{len(refused)}")
    row.check(not bad, json.dumps(bad))

    row_b = report("14b. 14 odd but valid jobIds (%, ?, #, +, ;, &, =, non-ASCII, dots) stopped through the operator",
                   "each stop arrives as one percent-encoded path segment (raw request log), at its own job only; all Ready")
    emu = emulator(auto_trigger=False)
    for jid in ODD_IDS:
        emu.add_job(jid, state="started")
    cluster.connection("es", emu.url, syncInterval="2s")
    for i, jid in enumerate(ODD_IDS):
        cluster.job(f"id-{i}", "stopped", jobId=jid)
    t0 = time.monotonic()
    op = operator()
    problems = []
    for i, jid in enumerate(ODD_IDS):
        _, err = _wait(cluster, f"id-{i}", lambda o: condition(o, "Ready").get("status") == "True"
                       and o["status"].get("observedGeneration") == 1, 30)
        if err:
            problems.append(f"{jid!r}: {err}")
    elapsed = time.monotonic() - t0
    posts = emu.requests(method="POST")
    for jid in ODD_IDS:
        mine = [r for r in posts if r.path == f"/_rollup/job/{jid}/_stop"]
        segs = [r.raw_path.split("/") for r in mine]
        if len(mine) != 1:
            problems.append(f"{jid!r}: {len(mine)} stops")
        elif not (len(segs[0]) == 5 and urllib.parse.unquote(segs[0][3]) == jid and _ENCODED_SEGMENT.fullmatch(segs[0][3])):
            problems.append(f"{jid!r}: raw path {mine[0].raw_path!r}")
        if emu.job_state(jid) != "stopped":
            problems.append(f"{jid!r}: server state {emu.job_state(jid)}")
    stray = [r.raw_path for r in emu.requests() if r.path not in {f"/_rollup/job/{j}/_stop" for j in ODD_IDS}
             | {"/_rollup/job/_all", "/"}]
    if stray:
        problems.append(f"requests to other endpoints: {stray}")
    row_b.num(stops=len(posts), stray_requests=len(stray), seconds_all_ready=round(elapsed, 1),
              example=next((r.raw_path for r in posts if "%" in r.raw_path), ""))
    row_b.check(not problems, "; ".join(problems)[:280])
    assert op.alive() and _tracebacks(op) == 0
    assert row.result == "PASS" and row_b.result == "PASS", (bad, problems)
