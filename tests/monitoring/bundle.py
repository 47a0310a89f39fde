"""The monitoring bundle as data: the alert rules and every PromQL expression of rules and dashboard."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent.parent
MONITORING = REPO / "manifests" / "monitoring"
RULE = MONITORING / "prometheusrule.yaml"
DASHBOARD = MONITORING / "dashboard.json"
# Grafana's interval variables are not PromQL; the parser gets a real duration in their place.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def rule_groups() -> dict:
    """The PrometheusRule's spec: the same `groups:` document promtool reads."""
    return yaml.safe_load(RULE.read_text())["spec"]


def alerts() -> list[dict]:
    return [r for g in rule_groups()["groups"] for r in g["rules"] if "alert" in r]


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs() -> list[tuple[str, str]]:
    out = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(var, value)
            out.append((f"dashboard panel {panel['id']} ({panel['title']}) {target['refId']}", expr))
    return out


def rule_exprs() -> list[tuple[str, str]]:
    return [(f"alert {r['alert']}", r["expr"]) for r in alerts()]


def inspect(promql_bin: Path, exprs: list[str]) -> list[dict]:
    proc = subprocess.run([str(promql_bin)], input=json.dumps(exprs), capture_output=True, text=True, check=True, timeout=60)
    return json.loads(proc.stdout)
