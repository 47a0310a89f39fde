"""promtool check rules and test rules on manifests/monitoring/prometheusrule-migrations.yaml (the
RollupMigration alerts), their runbook lines in docs/migration-to-downsampling.md, and their metric
names and labels against a scrape of the operator (migration/metrics.py) parsed by Prometheus' parser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from .bundle import REPO, inspect

HERE = Path(__file__).resolve().parent
RULE = REPO / "manifests" / "monitoring" / "prometheusrule-migrations.yaml"
DOC = REPO / "docs" / "migration-to-downsampling.md"


def groups() -> dict:
    return {"groups": yaml.safe_load(RULE.read_text())["spec"]["groups"]}


def alerts() -> list[dict]:
    return [r for g in groups()["groups"] for r in g["rules"] if "alert" in r]


def test_promtool_check_and_test_rules(promtool, tmp_path):
    (tmp_path / "migration_rules.yaml").write_text(yaml.safe_dump(groups(), sort_keys=False))
    shutil.copy(HERE / "migration_alerts_test.yaml", tmp_path / "migration_alerts_test.yaml")
    proc = subprocess.run([str(promtool), "check", "rules", "--lint=all", "--lint-fatal", "migration_rules.yaml"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0 and f"SUCCESS: {len(alerts())} rules found" in proc.stdout, proc.stdout + proc.stderr
    proc = subprocess.run([str(promtool), "test", "rules", "migration_alerts_test.yaml"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr
    cases = yaml.safe_load((HERE / "migration_alerts_test.yaml").read_text())["tests"]
    tested = {t["alertname"] for c in cases for t in c["alert_rule_test"] if t.get("exp_alerts")}
    assert tested == {a["alert"] for a in alerts()}  # every alert has a firing case


def test_every_alert_has_a_runbook_line():
    doc = DOC.read_text()
    for a in alerts():
        assert f"`{a['alert']}`" in doc, f"{DOC.name} has no runbook line for {a['alert']}"


def test_the_rules_name_what_the_operator_exports(promql):
    import rollup_operator.migration.metrics  # noqa: F401 - registers the collector

    scrape: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest().decode()):
        for s in family.samples:
            scrape.setdefault(s.name, set()).update(s.labels)
    states = {s.labels["state"] for f in text_string_to_metric_families(generate_latest().decode())
              if f.name == "rollup_operator_migrations" for s in f.samples}
    assert states == {"Ready", "Waiting", "Reconciling", "Stalled"}  # present before any migration exists
    for a in alerts():
        r = inspect(promql, [a["expr"]])[0]
        assert not r.get("error"), r["error"]
        assert r["metrics"] and all(m in scrape for m in r["metrics"]), (a["alert"], r["metrics"])
        known = set().union(*(scrape[m] for m in r["metrics"]))
        assert r["labels"] == ["state"] and set(r["labels"] + r["grouping"]) <= known, (a["alert"], r)
