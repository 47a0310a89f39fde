"""promtool check rules and promtool test rules (tests/monitoring/alerts_test.yaml) on the rules of
manifests/monitoring/prometheusrule.yaml; every alert has a firing and a silent case, and a
runbook line in the README."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from .bundle import REPO, alerts, rule_groups

HERE = Path(__file__).resolve().parent


def write_rules(tmp_path: Path) -> Path:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(rule_groups(), sort_keys=False))
    shutil.copy(HERE / "alerts_test.yaml", tmp_path / "alerts_test.yaml")
    return rules


def test_promtool_check_rules_with_lint(promtool, tmp_path):
    rules = write_rules(tmp_path)
    proc = subprocess.run([str(promtool), "check", "rules", "--lint=all", "--lint-fatal", str(rules)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in proc.stdout


def test_promtool_test_rules(promtool, tmp_path):
    write_rules(tmp_path)
    proc = subprocess.run([str(promtool), "test", "rules", "alerts_test.yaml"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_test_rules_can_fail(promtool, tmp_path):
    """The unit tests are not vacuous: with one alert's threshold changed they fail."""
    groups = rule_groups()
    for rule in groups["groups"][0]["rules"]:
        if rule.get("alert") == "RollupConnectionDown":
            rule["for"] = "1h"
    write_rules(tmp_path)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(groups, sort_keys=False))
    proc = subprocess.run([str(promtool), "test", "rules", "alerts_test.yaml"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode != 0 and "RollupConnectionDown" in proc.stdout + proc.stderr


def test_every_alert_has_a_firing_and_a_silent_case():
    tests = yaml.safe_load((HERE / "alerts_test.yaml").read_text())["tests"]
    fires, silent = set(), set()
    for t in tests:
        for case in t["alert_rule_test"]:
            (fires if case["exp_alerts"] else silent).add(case["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names == fires, f"alerts without a firing case: {names - fires}"
    assert names == silent, f"alerts without a silent case: {names - silent}"


def test_every_alert_has_a_runbook_line_in_the_readme():
    readme = (REPO / "README.md").read_text()
    for a in alerts():
        assert f"`{a['alert']}`" in readme, f"README has no runbook line for {a['alert']}"
        assert a["labels"]["severity"] in ("warning", "critical")
        assert a["annotations"]["summary"] and a["annotations"]["description"]
