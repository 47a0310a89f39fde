"""Scenario 8: each way a connection can be wrong gives its own condition reason and message,
on the RollupJob and (where it applies) on the ElasticsearchConnection; 8.x and 9.x converge."""

import time

import pytest
import trustme

from tests.integration.support import condition

from .tools import conditions_summary

pytestmark = pytest.mark.apiserver

STALLED = ("False", "False", "True")     # Ready, Reconciling, Stalled
RETRYING = ("False", "True", "False")
DEPRECATION = "The rollup functionality will be removed in Elasticsearch 10.0. See docs for more information."


def _wait(cluster, name, pred, timeout, plural="rollupjobs"):
    deadline = time.monotonic() + timeout
    obj = {}
    while time.monotonic() < deadline:
        try:
            obj = cluster.get(name, plural)
            if pred(obj):
                return obj, None
        except Exception:  # noqa: BLE001 - not there yet
            pass
        time.sleep(0.2)
    return obj, f"timed out; last status {(obj.get('status') or {})}"


def test_each_failure_has_its_reason_and_message(cluster, emulator, operator, report):
    ns = cluster.ns
    e8 = emulator(version="8.17.0", auto_trigger=False, users={"op": {"password": "right-pw", "privileges": ["all"]}})
    e8.add_job("j8", state="started")
    etls = emulator(version="8.17.0", auto_trigger=False, tls=True)
    enot = emulator(version="8.17.0", auto_trigger=False, not_elasticsearch=True)
    e7 = emulator(version="7.17.0", auto_trigger=False)
    e9 = emulator(version="9.1.0", auto_trigger=False)
    e9.add_job("j9", state="started")

    cluster.secret("good-creds", {"username": "op", "password": "right-pw"})
    cluster.secret("wrong-creds", {"username": "op", "password": "wrong-pw"})
    cluster.secret("no-key", {"user": "op"})
    cluster.secret("other-ca", {"ca.crt": trustme.CA().cert_pem.bytes().decode()})
    basic = lambda s: {"basic": {"secretRef": {"name": s}}}  # noqa: E731
    sync = {"syncInterval": "2s"}
    cluster.connection("c-unauth", e8.url, auth=basic("wrong-creds"), **sync)
    cluster.connection("c-nosecret", e8.url, auth=basic("absent"), **sync)
    cluster.connection("c-nokey", e8.url, auth=basic("no-key"), **sync)
    cluster.connection("c-badca", etls.url, tls={"caSecretRef": {"name": "other-ca"}}, **sync)
    cluster.connection("c-notes", enot.url, **sync)
    cluster.connection("c-7x", e7.url, **sync)
    cluster.connection("c-8x", e8.url, auth=basic("good-creds"), **sync)
    cluster.connection("c-9x", e9.url, **sync)
    # One job id per RollupJob on e8: RollupJobs naming the same job on one cluster are duplicates
    # (only the oldest may act), which is scenario 11, not this one.
    for job, conn, jid in (("j-unauth", "c-unauth", "j8-unauth"), ("j-nosecret", "c-nosecret", "j8-nosecret"), ("j-nokey", "c-nokey", "j8-nokey"),
                           ("j-noconn", "ghost", "x"), ("j-badca", "c-badca", "x"), ("j-notes", "c-notes", "x"),
                           ("j-7x", "c-7x", "x"), ("j-8x", "c-8x", "j8"), ("j-9x", "c-9x", "j9")):
        cluster.job(job, "stopped", connection=conn, jobId=jid)
    op = operator()

    cases = [
        # (scenario, job, connection or None, reason, conditions, [message fragments], extra connection check)
        ("wrong credentials", "j-unauth", "c-unauth", "Unauthorized", STALLED,
         ["Elasticsearch rejected the credentials (401", "unable to authenticate user […]", "check the connection's Secret"], None),
        ("missing Secret (told as an unlabelled one: no existence oracle)", "j-nosecret", "c-nosecret", "SecretNotAllowed", STALLED,
         [f"Secret {ns}/absent does not exist or is not labelled rollup.esops.dev/credentials=true"], None),
        ("Secret without the key", "j-nokey", "c-nokey", "SecretKeyNotFound", STALLED,
         [f"Secret {ns}/no-key has no key 'username'"], None),
        ("missing connection", "j-noconn", None, "ConnectionNotFound", STALLED,
         [f"ElasticsearchConnection {ns}/ghost does not exist"], None),
        ("TLS, CA that did not sign the server's certificate", "j-badca", "c-badca", "TLSError", RETRYING,
         ["TLS handshake with Elasticsearch failed", "CERTIFICATE_VERIFY_FAILED", "check spec.tls (caSecretRef / insecureSkipVerify)"],
         lambda st: st.get("reachable") is False),
        ("not Elasticsearch (no X-Elastic-Product)", "j-notes", "c-notes", "NotElasticsearch", STALLED,
         ["the server is not Elasticsearch: its answer lacks the X-Elastic-Product header"], None),
        ("Elasticsearch 7.17", "j-7x", "c-7x", "UnsupportedVersion", STALLED,
         ["Elasticsearch 7.17.0 is not supported: the operator needs 8.0 or later"], lambda st: st.get("version") == "7.17.0"),
        ("Elasticsearch 8.17 (converges)", "j-8x", "c-8x", "Stopped", ("True", "False", "False"),
         ["rollup job [j8] is stopped"],
         lambda st: st.get("version") == "8.17.0" and st.get("rollupDeprecated") is True
         and st.get("newJobsRequireRollupUsage") is True and not st.get("deprecationWarning")),
        ("Elasticsearch 9.1 (converges, deprecation reported)", "j-9x", "c-9x", "Stopped", ("True", "False", "False"),
         ["rollup job [j9] is stopped"],
         lambda st: st.get("version") == "9.1.0" and st.get("rollupDeprecated") is True and st.get("deprecationWarning") == DEPRECATION),
    ]
    failures = []
    t0 = time.monotonic()
    for title, job, conn, reason, conds, fragments, conn_check in cases:
        converges = conds[0] == "True"
        expectation = (f"job Ready=True reason {reason}" if converges else
                       f"job {'Stalled' if conds == STALLED else 'Reconciling (retried)'} with reason {reason}") + \
            f", message has {fragments!r}" + (f"; connection {conn} Ready reason {'Connected' if converges else reason}"
                                                  f" with the same message" if conn else "")
        row = report(f"8. {title}", expectation)
        problems = []
        obj, err = _wait(cluster, job, lambda o: (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"]
                         and condition(o, "Ready").get("reason") == reason, 30)
        if err:
            problems.append(f"job: {err}")
        else:
            got = conditions_summary(obj)
            if got[:3] != conds:
                problems.append(f"job conditions {got}")
            msg = condition(obj, "Ready").get("message", "")
            problems += [f"job message lacks {f!r}: {msg!r}" for f in fragments if f not in msg]
            if "[op]" in msg:  # issue 20 finding 4: the username is not shown to the namespace's viewers
                problems.append(f"job message names the connection's user: {msg!r}")
            if "right-pw" in msg or "wrong-pw" in msg:
                problems.append("password in the message")
            row.num(seconds_to_reason=round(time.monotonic() - t0, 1), message=msg[:160])
        if conn:
            want = "Connected" if converges else reason
            cobj, err = _wait(cluster, conn, lambda o: condition(o, "Ready").get("reason") == want, 20,
                              plural="elasticsearchconnections")
            if err:
                problems.append(f"connection: {err}")
            else:
                st = cobj["status"]
                if not converges:
                    cmsg = condition(cobj, "Ready").get("message", "")
                    problems += [f"connection message lacks {f!r}: {cmsg!r}" for f in fragments if f not in cmsg]
                    if st.get("lastError") != cmsg:
                        problems.append("connection lastError differs from its Ready message")
                if conn_check and not conn_check(st):
                    problems.append(f"connection status {st}")
                row.num(connection={k: st.get(k) for k in ("reachable", "version", "rollupDeprecated", "deprecationWarning")
                                    if st.get(k) is not None})
        row.check(not problems, "; ".join(problems))
        if problems:
            failures.append((title, problems))
    assert op.alive() and "Traceback" not in op.logs()
    assert e8.job_state("j8") == "stopped" and e9.job_state("j9") == "stopped"
    assert not failures, failures
