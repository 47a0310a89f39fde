"""promtool check rules and promtool test rules (tests/monitoring/alerts_test.yaml) on the rules of
manifests/monitoring/prometheusrule.yaml; every alert has a firing and a silent case, and a
runbook row in docs/operations.md ("Alerts and runbook"). The cases that tell the exact alerts from the approximations they
replaced are checked to get the other outcome from the old expressions."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
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


RUNBOOK = REPO / "docs" / "operations.md"  # its section "Alerts and runbook"


def runbook_rows() -> dict[str, list[str]]:
    """The runbook table of docs/operations.md: alert name -> its cells (fires when, what to do)."""
    text = RUNBOOK.read_text()
    section = text.split("\n## Alerts and runbook\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| `") and len(cells) == 3:
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_every_alert_has_a_runbook_line():
    rows = runbook_rows()
    names = {a["alert"] for a in alerts()}
    assert names - set(rows) == set(), f"{RUNBOOK.relative_to(REPO)} has no runbook row for {sorted(names - set(rows))}"
    assert set(rows) - names == set(), f"runbook rows for alerts that do not exist: {sorted(set(rows) - names)}"
    for name, (fires_when, what_to_do) in rows.items():
        assert fires_when and what_to_do, f"the runbook row for {name} is empty"
    for a in alerts():
        assert a["labels"]["severity"] in ("warning", "critical")
        assert a["annotations"]["summary"] and a["annotations"]["description"]


# The approximations two rules used before rollup_operator_job_conditions and the stop-duration
# buckets above 1800 s existed.
OLD_EXPRS = {
    "RollupJobStalled": 'sum(rollup_operator_jobs{state=~"absent|unknown"} or rollup_operator_jobs{desired="invalid"}) > 0',
    "RollupStopsSlow": "sum(increase(rollup_operator_stop_duration_seconds_sum[6h])) / sum(increase(rollup_operator_stop_duration_seconds_count[6h])) > 3600",
}
# (alert, start of the case's name): the cases the old expression gets wrong, on the same series.
TELLING_CASES = [
    ("RollupJobStalled", "a duplicate and a config conflict, both in their desired state"),
    ("RollupJobStalled", "an Elasticsearch outage for 40 minutes"),
    ("RollupStopsSlow", "3 of 20 stops take 90 minutes"),
    ("RollupStopsSlow", "one stop of 20 hours among 19 of a minute"),
]


def run_one_case(promtool, tmp_path: Path, groups: dict, case: dict) -> subprocess.CompletedProcess:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(groups, sort_keys=False))
    doc = yaml.safe_load((HERE / "alerts_test.yaml").read_text())
    doc["tests"] = [case]
    (tmp_path / "alerts_test.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return subprocess.run([str(promtool), "test", "rules", "alerts_test.yaml"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)


@pytest.mark.parametrize("alert,name", TELLING_CASES, ids=[n for _, n in TELLING_CASES])
def test_the_exact_rule_and_the_old_approximation_disagree(promtool, tmp_path, alert, name):
    cases = [t for t in yaml.safe_load((HERE / "alerts_test.yaml").read_text())["tests"] if t["name"].startswith(name)]
    assert len(cases) == 1, f"no single case named {name!r}"
    case = {**cases[0], "alert_rule_test": [c for c in cases[0]["alert_rule_test"] if c["alertname"] == alert]}
    fires = any(c["exp_alerts"] for c in case["alert_rule_test"])
    new = run_one_case(promtool, tmp_path, rule_groups(), case)
    assert new.returncode == 0, new.stdout + new.stderr
    old_groups = rule_groups()
    for rule in old_groups["groups"][0]["rules"]:
        if rule.get("alert") == alert:
            rule["expr"] = OLD_EXPRS[alert]
    old = run_one_case(promtool, tmp_path, old_groups, case)
    out = old.stdout + old.stderr
    assert old.returncode != 0, f"the old expression passes {name!r} too:\n{out}"
    if fires:
        assert "got:[]" in out, f"the old expression fires on {name!r} as well (other labels only):\n{out}"
    else:
        assert "exp:[]" in out and "got:[]" not in out, out
