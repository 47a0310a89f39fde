"""Issue 20 finding 3: export output that Kubernetes' YAML reader reads back as the same strings.

Kubernetes decodes manifests with YAML 1.1 rules (sigs.k8s.io/yaml over go-yaml), where ``y``,
``N``, ``1e3``, ``0o17``... are booleans or numbers; PyYAML (which reads them as strings) would
print them plain. Every string that any YAML 1.1 or 1.2 reader could take for another type is
quoted, checked here on the text and with ``kubectl apply --dry-run=server`` of the real output
against the real API server. Jobs that cannot be RollupJobs are named with why, and the export
fails unless ``--skip-unrepresentable`` was given.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from rollup_operator.cli import export
from es_rollup_emulator import EmulatorThread

HOSTILE = ["y", "n", "Y", "N", "1e3", "+1e3", "1.0e3", "2e5", "1.5e3", "0o17", "yes", "off", "null", "0x1f", "1_000", "12:30",
           "2026-01-01", ".inf", "-.nan", "~"]
UNREPRESENTABLE = ["a b", "a\tb", "a\rb", "x" * 600]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rollup_operator.cli.main", *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ))


@pytest.fixture(scope="module")
def hostile_server():
    with EmulatorThread(version="8.17.0", auto_trigger=False) as emu:
        for job_id in HOSTILE:
            # the id, the index pattern and the rollup index all hostile (the source index is created by add_job)
            emu.add_job(job_id, {"rollup_index": job_id.replace(":", "-").replace("~", "t").lstrip("+-.") or "r"})
        yield emu


@pytest.fixture(scope="module")
def unrepresentable_server():
    with EmulatorThread(version="8.17.0", auto_trigger=False) as emu:
        emu.add_job("fine")
        for job_id in UNREPRESENTABLE:
            emu.add_job(job_id)
        yield emu


def test_every_ambiguous_string_is_quoted(hostile_server):
    r = cli("export", "--url", hostile_server.url, "--namespace", "t")
    assert r.returncode == 0, r.stderr
    for job_id in HOSTILE:
        assert f'jobId: "{job_id}"' in r.stdout, job_id
    docs = [d for d in yaml.safe_load_all(r.stdout) if d and d["kind"] == "RollupJob"]
    assert sorted(d["spec"]["jobId"] for d in docs) == sorted(HOSTILE)


@pytest.mark.parametrize("value", HOSTILE + ["true", "False", "ON", "", "1", "-1", "0.5", "@x", "a: b", "#c", "*a", "!t"])
def test_render_quotes_what_a_yaml_11_reader_would_retype(value):
    text = export.render_yaml([export.Exported({"v": value}, [])])
    assert text.startswith('v: "') or text.startswith("v: '"), text


@pytest.mark.parametrize("value", ["rollup-target", "a.b", "logs/x", "_id", "Job1"])
def test_plain_strings_stay_plain(value):
    assert export.render_yaml([export.Exported({"v": value}, [])]) == f"v: {value}\n"


def test_unrepresentable_jobs_are_named_and_fail_the_export(unrepresentable_server):
    r = cli("export", "--url", unrepresentable_server.url)
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr.count("cannot be represented as a RollupJob") == len(UNREPRESENTABLE), r.stderr
    assert "'a b'" in r.stderr and "'a\\tb'" in r.stderr and "'a\\rb'" in r.stderr


def test_skip_unrepresentable_exports_the_rest_and_names_the_others(unrepresentable_server):
    r = cli("export", "--url", unrepresentable_server.url, "--skip-unrepresentable")
    assert r.returncode == 0, r.stderr
    ids = [d["spec"]["jobId"] for d in yaml.safe_load_all(r.stdout) if d and d["kind"] == "RollupJob"]
    assert ids == ["fine"]
    assert r.stderr.count("cannot be represented as a RollupJob") == len(UNREPRESENTABLE)


@pytest.mark.apiserver
def test_kubectl_accepts_the_real_output(hostile_server, cluster, kubectl):
    r = cli("export", "--url", hostile_server.url)
    assert r.returncode == 0, r.stderr
    out = kubectl("apply", "--dry-run=server", "-n", cluster.ns, "-f", "-", input=r.stdout, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("(server dry run)") == len(HOSTILE) + 1, out.stdout  # the jobs and the connection


@pytest.mark.parametrize("job_id", ["a\rb", "a\nb", "a\r\nb", "a\u2028b", "a\x85b", "a|b", "a\\|b", "a\x0bb", "a\x00b"])
def test_migration_plan_markdown_rows_stay_one_row(job_id):
    from rollup_operator.cli.plan_cmd import markdown

    plan = {"jobId": job_id, "interval": "1h", "dimensions": [f"host{job_id}"], "metrics": [{"field": f"v{job_id}", "type": "gauge"}],
            "verdict": "blocked", "downsampleable": False, "sourceChecked": True,
            "blockers": [{"reason": "CalendarInterval", "message": f"m{job_id}", "proposal": None}]}
    table = markdown([plan]).split("\n\n")[1]
    lines = table.split("\n")
    assert len(lines) == 3, lines  # header, separator, the one row: nothing broke it
    row = lines[2]
    assert row.startswith("| ") and row.endswith(" |")
    # exactly 7 unescaped '|' (6 cells): an escaped '\|' does not count
    import re
    assert len(re.findall(r"(?<!\\)(?:\\\\)*\|", row)) == 7, row
    assert not re.search("[\x00-\x1f\x7f\x85\u2028\u2029]", row)
