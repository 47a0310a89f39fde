"""``rollup-operator export`` without Kubernetes: the config round trip the operator's comparison
accepts, states, the connection document, output formats, and the specific errors (nothing on stdout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest
import yaml

from rollup_operator.cli import export
from rollup_operator.job.config import config_differences, config_to_es
from es_rollup_emulator import EmulatorThread

from . import corpus


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rollup_operator.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


@pytest.fixture(scope="module")
def loaded():
    from elasticsearch import Elasticsearch

    with EmulatorThread(version="8.17.0", auto_trigger=False) as emu:
        emu.seed_rollup_usage()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            accepted, refused = corpus.load(Elasticsearch(emu.url), corpus.all_jobs())
        yield emu, accepted, refused


def test_every_accepted_config_round_trips_through_the_operators_comparison(loaded):
    emu, accepted, refused = loaded
    assert len(accepted) >= 48 + (5 if corpus.REFERENCE.is_dir() else 0), refused
    for job_id in accepted:
        actual = emu.get_job(job_id)["config"]
        cfg = export.checked_config(actual)
        assert config_differences(config_to_es(cfg), actual) == [], job_id
        assert config_to_es(cfg)["groups"]["date_histogram"] == \
            {k: v for k, v in actual["groups"]["date_histogram"].items() if k != "interval"}


def test_reference_corpus_present_or_skipped():
    if corpus.reference_jobs() is None:
        pytest.skip("../shared/reference is absent: the YAML REST test configs are not part of this run")
    assert len(corpus.reference_jobs()) >= 8


@pytest.mark.parametrize("state, desired, suspended", [("started", "started", False), ("indexing", "started", False),
                                                       ("stopped", "stopped", False), ("stopping", "stopped", True),
                                                       ("aborting", "stopped", True)])
def test_desired_state_from_the_job_state(state, desired, suspended):
    entry = {"config": {**corpus_config(), "id": "j"}, "status": {"job_state": state}}
    doc = export.job_document(entry, "j", "es", "ns")
    assert doc.body["spec"]["desiredState"] == desired
    assert doc.body["spec"].get("suspend", False) is suspended
    assert doc.body["spec"]["deletionPolicy"] == "Retain" and doc.body["spec"]["jobId"] == "j"
    assert doc.body["metadata"] == {"name": "j", "namespace": "ns"}
    if suspended:
        assert any(state in c for c in doc.comments)


def corpus_config() -> dict:
    return {"index_pattern": "a", "rollup_index": "b", "cron": "* * * * * ?", "page_size": 5, "timeout": "20s",
            "groups": {"date_histogram": {"field": "t", "fixed_interval": "1h", "time_zone": "UTC"}},
            "metrics": []}


def test_untranslatable_configs_are_refused_by_name():
    weird = {**corpus_config(), "id": "w", "timeout": "1.5s"}
    docs, errors = export.export_documents([{"config": weird, "status": {"job_state": "stopped"}}],
                                           connection=export.ConnectionInfo("es"))
    assert docs == [] and len(errors) == 1 and "'w'" in errors[0] and "timeout" in errors[0]
    _, errors = export.export_documents([], connection=export.ConnectionInfo("es"), only=["nope"])
    assert errors == ["job 'nope': no such rollup job on the server"]


def test_connection_document_carries_no_credentials_but_a_secret_stub():
    doc = export.connection_document(export.ConnectionInfo("prod", "https://es:9200", auth="basic", ca=True), "ops")
    assert doc.body["spec"] == {"url": "https://es:9200", "auth": {"basic": {"secretRef": {"name": "prod-credentials"}}},
                                "tls": {"caSecretRef": {"name": "prod-ca"}}}
    stub = yaml.safe_load("\n".join(doc.comments[doc.comments.index("---") + 1:]))
    assert stub["kind"] == "Secret" and stub["metadata"] == {"name": "prod-credentials", "namespace": "ops"}
    assert set(stub["stringData"]) == {"username", "password"}
    text = export.render_yaml([doc])
    assert [d["kind"] for d in yaml.safe_load_all(text)] == ["ElasticsearchConnection"]  # the stub is a comment


def test_cli_yaml_and_json_and_one_read(loaded):
    emu, accepted, _ = loaded
    emu.clear_requests()
    r = cli("export", "--url", emu.url, "--namespace", "team-a", "--connection", "es")
    assert r.returncode == 0, r.stderr
    docs = list(yaml.safe_load_all(r.stdout))
    assert [d["kind"] for d in docs] == ["ElasticsearchConnection"] + ["RollupJob"] * len(accepted)
    assert sorted(d["spec"]["jobId"] for d in docs[1:]) == sorted(accepted)
    assert [(x.method, x.path) for x in emu.requests()] == [("GET", "/_rollup/job/_all")]
    r = cli("export", "--url", emu.url, "-o", "json", "--job", accepted[0], "--job", accepted[1])
    listed = json.loads(r.stdout)
    assert listed["kind"] == "List" and [i["spec"]["jobId"] for i in listed["items"][1:]] == accepted[:2]


def test_cli_credentials_only_from_the_environment():
    with EmulatorThread(version="8.17.0", users={"ops": ("s3cret-pw", ["monitor_rollup"])}) as emu:
        r = cli("export", "--url", emu.url, "--username", "ops", "--password-env", "ES_PW", env={"ES_PW": "s3cret-pw"})
        assert r.returncode == 0, r.stderr
        assert "s3cret-pw" not in r.stdout and "password: <fill in>" in r.stdout
        r = cli("export", "--url", emu.url, "--username", "ops")
        assert r.returncode == 2 and r.stdout == "" and "--password-env" in r.stderr
        r = cli("export", "--url", emu.url, "--username", "ops", "--password", "s3cret-pw")
        assert r.returncode == 2 and r.stdout == "" and "unrecognized arguments: --password" in r.stderr
    with EmulatorThread(version="8.17.0", api_keys={"kid": ("k3y", ["monitor_rollup"])}) as emu:
        r = cli("export", "--url", emu.url, "--api-key-env", "ES_KEY", env={"ES_KEY": "kid:k3y"})
        assert r.returncode == 0, r.stderr
        assert "api_key: <fill in" in r.stdout and "k3y" not in r.stdout
        assert {x.user for x in emu.requests()} != {None}
        r = cli("migration-plan", "--url", emu.url, "--api-key-env", "ES_KEY", "--job", "nope", env={"ES_KEY": "kid:k3y"})
        assert (r.returncode, r.stdout) == (7, "") and "no such rollup job on the server: nope" in r.stderr


def test_specific_errors_and_nothing_on_stdout():
    users = {"ops": ("pw", ["monitor_rollup"]), "nobody": ("pw", [], ["viewer"])}
    with EmulatorThread(version="8.17.0", users=users) as emu:
        url = emu.url
        r = cli("export", "--url", url, "--username", "ops", "--password-env", "PW", env={"PW": "wrong"})
        assert (r.returncode, r.stdout) == (4, "") and "401" in r.stderr and "'ops'" in r.stderr
        r = cli("migration-plan", "--url", url, "--username", "nobody", "--password-env", "PW", env={"PW": "pw"})
        assert (r.returncode, r.stdout) == (5, "") and "403" in r.stderr and "monitor_rollup" in r.stderr
        assert "cluster:monitor/xpack/rollup/get" in r.stderr  # the server's own words follow
    r = cli("export", "--url", url)  # the emulator is gone: nothing listens there now
    assert (r.returncode, r.stdout) == (3, "") and "cannot reach Elasticsearch at" in r.stderr
    with EmulatorThread(version="8.17.0", not_elasticsearch=True) as emu:
        r = cli("export", "--url", emu.url)
        assert (r.returncode, r.stdout) == (6, "") and "does not answer as Elasticsearch" in r.stderr
    r = cli("export", "--url", "http://user:pw@127.0.0.1:9")
    assert (r.returncode, r.stdout) == (2, "") and "must not carry credentials" in r.stderr


def test_nine_x_deprecation_warnings_do_not_leak(capfd):
    with EmulatorThread(version="9.1.0", auto_trigger=False) as emu:
        emu.seed_rollup_usage()
        emu.add_job("j9", state="started")
        r = cli("export", "--url", emu.url)
    assert r.returncode == 0 and r.stderr == ""
    assert [d["spec"]["desiredState"] for d in yaml.safe_load_all(r.stdout) if d["kind"] == "RollupJob"] == ["started"]


def test_tls_ca_file_insecure_and_untrusted():
    with EmulatorThread(version="8.17.0", tls=True, auto_trigger=False) as emu:
        emu.seed_rollup_usage()
        emu.add_job("tls-job")
        r = cli("export", "--url", emu.url, "--ca-file", emu.ca_file)
        assert r.returncode == 0, r.stderr
        conn = next(yaml.safe_load_all(r.stdout))
        assert conn["spec"]["tls"] == {"caSecretRef": {"name": "elasticsearch-ca"}}
        assert "kubectl create secret generic elasticsearch-ca" in r.stdout
        r = cli("export", "--url", emu.url, "--insecure-skip-verify")
        assert r.returncode == 0 and next(yaml.safe_load_all(r.stdout))["spec"]["tls"] == {"insecureSkipVerify": True}
        r = cli("export", "--url", emu.url)
        assert (r.returncode, r.stdout) == (3, "") and "TLS error" in r.stderr and "--ca-file" in r.stderr
