"""Copy what the chart shares with manifests/ into charts/rollup-operator/files/, and render the
chart README's values table from values.yaml.

    python -m tests.helm.sync_chart          # rewrite the copies and the README table
    python -m tests.helm.sync_chart --check  # exit 1 if anything is out of date

manifests/ is the source: the CRDs (manifests/crds/, owned by the API), the alert rules and the
dashboard (manifests/monitoring/). tests/helm/test_chart_static.py runs the check.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent.parent
CHART = REPO / "charts" / "rollup-operator"
FILES = CHART / "files"
README = CHART / "README.md"

COPIES = {
    **{FILES / "crds" / p.name: p for p in sorted((REPO / "manifests" / "crds").glob("*.yaml"))},
    FILES / "prometheusrule.yaml": REPO / "manifests" / "monitoring" / "prometheusrule.yaml",
    FILES / "prometheusrule-migrations.yaml": REPO / "manifests" / "monitoring" / "prometheusrule-migrations.yaml",
    FILES / "dashboard.json": REPO / "manifests" / "monitoring" / "dashboard.json",
}

BEGIN, END = "<!-- values:begin (python -m tests.helm.sync_chart) -->", "<!-- values:end -->"


def documented_values(text: str) -> list[tuple[str, str]]:
    """(dotted key, description) for every key preceded by a `# -- description` comment."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[int, str]] = []
    pending: str | None = None
    for line in text.splitlines():
        m = re.match(r"^(\s*)# -- (.*)$", line)
        if m:
            pending = m.group(2).strip()
            continue
        m = re.match(r"^(\s*)([A-Za-z0-9_.-]+):", line)
        if not m:
            continue
        indent, key = len(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        if pending is not None:
            out.append((".".join(k for _, k in stack), pending))
            pending = None
    return out


def lookup(values: dict, dotted: str):
    cur = values
    for part in dotted.split("."):
        cur = cur[part]
    return cur


def values_table() -> str:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    rows = ["| key | default | description |", "| --- | --- | --- |"]
    for key, desc in documented_values(text):
        default = yaml.safe_dump(lookup(values, key), default_flow_style=True, width=10_000).strip()
        default = default.removesuffix("\n...").removesuffix("...").strip()
        rows.append(f"| `{key}` | `{default}` | {desc} |")
    return "\n".join(rows)


def render_readme(current: str) -> str:
    start, end = current.index(BEGIN), current.index(END)
    return current[: start + len(BEGIN)] + "\n" + values_table() + "\n" + current[end:]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for dst, src in COPIES.items():
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            stale.append(str(dst.relative_to(REPO)))
            if not check:
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(src.read_bytes())
    readme = README.read_text()
    wanted = render_readme(readme)
    if wanted != readme:
        stale.append(str(README.relative_to(REPO)))
        if not check:
            README.write_text(wanted)
    if check and stale:
        print("out of date (run python -m tests.helm.sync_chart): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
