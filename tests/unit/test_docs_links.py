"""Every relative link of the documentation leads somewhere: README.md, docs/**/*.md and tests/README.md.

A link's file (or directory) must exist inside the repository and, when the link names an anchor
(``page.md#section``), the page must have a heading with that anchor, as GitHub derives it. No page
may point outside the repository: a clone has no ``../shared``. The checker itself is tested on
pages written for the purpose, so a broken link, a missing anchor and a link out of the repository
are each shown to fail. And docs/reference/api.md describes every field the CRDs of manifests/crds/
declare, so a new field cannot land undocumented.
And the dependency rules docs/architecture.md states ("What may import what") hold on the tree.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Pages other branches of issue 23 write (the OpenSearch dialect; the move to downsampling). The
# README links them already; while a page is absent its links are excused, once it exists they are
# checked like any other. Remove a name here when its page has landed.
PENDING: frozenset[str] = frozenset()

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`]*`")
LINK = re.compile(r"(?<!!)\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # https:, mailto:, ...


def doc_pages(root: Path = REPO) -> list[Path]:
    pages = [root / "README.md", root / "tests" / "README.md", *sorted((root / "docs").rglob("*.md")),
             *sorted((root / "devtools").rglob("README.md"))]
    return [p for p in pages if p.is_file()]


def prose_lines(text: str):
    """(line number, line without inline code) for every line outside fenced code blocks."""
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield n, INLINE_CODE.sub("", line)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text lower-cased, punctuation dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    fenced = False
    for line in page.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        m = HEADING.match(line)
        if fenced or not m:
            continue
        base = slug(m.group(2))
        k = seen.get(base, 0)
        seen[base] = k + 1
        out.add(base if k == 0 else f"{base}-{k}")
    return out


def problems(page: Path, root: Path = REPO, pending: frozenset[str] = PENDING) -> list[str]:
    """What is wrong with the links of one page, one sentence each (empty: nothing)."""
    where = page.relative_to(root)
    found: list[str] = []
    text = page.read_text()
    if "../shared" in text:
        found.append(f"{where}: names ../shared, which is outside the repository")
    for n, line in prose_lines(text):
        for m in [*LINK.finditer(line), *IMAGE.finditer(line)]:
            target = m.group(1)
            if EXTERNAL.match(target):
                continue
            path_part, _, anchor = target.partition("#")
            dest = (page.parent / path_part).resolve() if path_part else page.resolve()
            if not dest.is_relative_to(root.resolve()):
                found.append(f"{where}:{n}: {target} points outside the repository")
                continue
            rel = dest.relative_to(root.resolve()).as_posix()
            if not dest.exists():
                if rel not in pending:
                    found.append(f"{where}:{n}: {target}: no such file {rel}")
                continue
            if anchor:
                if dest.is_dir() or dest.suffix != ".md":
                    found.append(f"{where}:{n}: {target}: an anchor into {rel}, which is not a Markdown page")
                elif anchor not in anchors(dest):
                    found.append(f"{where}:{n}: {target}: {rel} has no heading with the anchor #{anchor}")
    return found


def test_the_documentation_pages_are_there():
    names = {p.relative_to(REPO).as_posix() for p in doc_pages()}
    for wanted in ("README.md", "tests/README.md", "devtools/README.md", "docs/install.md", "docs/reference/api.md", "docs/reference/conditions.md",
                   "docs/reconciliation.md", "docs/adoption.md", "docs/migration.md", "docs/operations.md",
                   "docs/high-availability.md", "docs/security.md", "docs/design.md", "docs/architecture.md",
                   "docs/benchmarks.md", "docs/faults.md", "docs/development.md"):
        assert wanted in names, f"{wanted} is missing"


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(page):
    assert problems(page) == []


def test_the_readme_links_every_docs_page():
    readme = (REPO / "README.md").read_text()
    linked = {m.group(1).partition("#")[0] for _, line in prose_lines(readme) for m in LINK.finditer(line)}
    pages = {p.relative_to(REPO).as_posix() for p in (REPO / "docs").rglob("*.md")} | PENDING
    assert sorted(pages - linked) == []


# --- the checker itself, on pages written to be wrong ----------------------------------------------

@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "docs" / "reference").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "docs" / "reference" / "api.md").write_text("# API reference\n\n## Status conditions\n\n## Status conditions\n")
    (root / "docs" / "ops.md").write_text("# Operating it\n\n## Running the operator: `rollup-operator run`\n")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "notes.md").write_text("# outside\n")
    return root


def check(root: Path, body: str, pending: frozenset[str] = frozenset()) -> list[str]:
    page = root / "README.md"
    page.write_text(body)
    return problems(page, root, pending)


def test_good_links_pass(repo):
    assert check(repo, "[api](docs/reference/api.md#status-conditions), [again](docs/reference/api.md#status-conditions-1),\n"
                       "[run](docs/ops.md#running-the-operator-rollup-operator-run), [dir](docs/), [web](https://example.com/x),\n"
                       "`[not a link](nowhere.md)`\n```\n[in a fence](nowhere.md)\n```\n") == []


def test_a_link_to_a_missing_file_fails(repo):
    assert check(repo, "see [install](docs/install.md)\n") == ["README.md:1: docs/install.md: no such file docs/install.md"]


def test_a_link_to_a_missing_anchor_fails(repo):
    assert check(repo, "\n[x](docs/ops.md#metrics)\n") == ["README.md:2: docs/ops.md#metrics: docs/ops.md has no heading with the anchor #metrics"]


def test_a_link_to_a_missing_anchor_on_the_same_page_fails(repo):
    assert check(repo, "# Title\n\n[up](#title) [down](#nothing)\n") == ["README.md:3: #nothing: README.md has no heading with the anchor #nothing"]


def test_a_link_out_of_the_repository_fails(repo):
    found = check(repo, "[notes](../shared/notes.md)\n")
    assert found == ["README.md: names ../shared, which is outside the repository",
                     "README.md:1: ../shared/notes.md points outside the repository"]
    assert check(repo, "[up](../x.md)\n") == ["README.md:1: ../x.md points outside the repository"]


def test_a_pending_page_is_excused_only_while_absent(repo):
    assert check(repo, "[e](docs/engines.md#x)\n", frozenset({"docs/engines.md"})) == []
    (repo / "docs" / "engines.md").write_text("# Engines\n")
    assert check(repo, "[e](docs/engines.md#x)\n", frozenset({"docs/engines.md"})) == [
        "README.md:1: docs/engines.md#x: docs/engines.md has no heading with the anchor #x"]


# --- the API reference against the CRDs ------------------------------------------------------------

def crd_fields(kind_file: str) -> tuple[str, list[tuple[str, ...]], list[str]]:
    """(kind, every spec field path, every top-level status field) of one CRD of manifests/crds/."""
    import yaml

    crd = yaml.safe_load((REPO / "manifests" / "crds" / kind_file).read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    paths: list[tuple[str, ...]] = []

    def walk(node: dict, path: tuple[str, ...]) -> None:
        node = node.get("items", node)
        for name, child in node.get("properties", {}).items():
            paths.append(path + (name,))
            walk(child, path + (name,))

    walk(schema["spec"], ())
    return crd["spec"]["names"]["kind"], paths, list(schema["status"].get("properties", {}))


@pytest.mark.parametrize("kind_file", ["rollup.esops.dev_rollupjobs.yaml", "rollup.esops.dev_elasticsearchconnections.yaml"])
def test_the_api_reference_names_every_crd_field(kind_file):
    kind, spec_paths, status_fields = crd_fields(kind_file)
    text = (REPO / "docs" / "reference" / "api.md").read_text()
    section = re.split(r"\n## ", text.split(f"\n## {kind}", 1)[1], maxsplit=1)[0]
    missing = [".".join(p) for p in spec_paths if f"`spec.{p[0]}" not in section or not re.search(rf"\b{re.escape(p[-1])}\b", section)]
    missing += [f"status.{f}" for f in status_fields if f"`{f}`" not in section]
    assert missing == [], f"docs/reference/api.md ({kind}) does not describe {missing}"


# --- the dependency rules docs/architecture.md states -----------------------------------------------

PACKAGE = REPO / "operator" / "rollup_operator"
PURE_JOB = {"job.spec", "job.connection_spec", "job.config", "job.observations", "job.decide", "job.progress", "job.ownership", "job.status",
            "job.retry"}


def imports_of_package() -> dict[str, set[str]]:
    """module (relative to rollup_operator, e.g. ``job.decide``) -> the modules of the package it imports."""
    import ast

    mods = {".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__").removesuffix("__init__"): p
            for p in PACKAGE.rglob("*.py")}
    packages = {m for m, p in mods.items() if p.name == "__init__.py"}
    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:  # the package imports absolutely only
                names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            else:
                continue
            for name in names:
                if name.startswith("es_rollup_emulator"):
                    deps.add(name)
                elif name.startswith("rollup_operator."):
                    rel = name.removeprefix("rollup_operator.")
                    if rel in mods:
                        deps.add(rel)
        deps.discard(mod)
        graph[mod] = {d for d in deps if d not in packages}  # ``from pkg import module``: the module counts
    return graph


def layer(mod: str) -> str:
    return mod.split(".", 1)[0]


def test_the_layers_import_in_the_direction_architecture_md_states():
    graph = imports_of_package()
    gone = sorted((PURE_JOB | {"kube.client", "engine.connection", "cli.main"}) - graph.keys())
    assert gone == [], f"modules docs/architecture.md (and PURE_JOB here) name are gone: {gone}; update both"
    broken = []
    for mod, deps in graph.items():
        for dep in deps:
            if dep.startswith("es_rollup_emulator"):
                broken.append(f"{mod} imports the emulator ({dep})")
            elif mod in PURE_JOB and dep not in PURE_JOB | {"kube.names", "migration.plan", "timefmt"}:
                broken.append(f"the pure job module {mod} imports {dep}")
            elif layer(mod) == "engine" and layer(dep) in ("kube", "app", "cli", "ha"):
                broken.append(f"{mod} (engine) imports {dep}")
            elif layer(mod) == "kube" and layer(dep) in ("engine", "app", "cli", "ha"):
                broken.append(f"{mod} (kube) imports {dep}")
            elif layer(dep) in ("app", "ha") and layer(mod) != layer(dep) and mod != "cli.main":
                broken.append(f"{mod} imports {dep}: only cli.main may")
            elif layer(dep) == "cli" and layer(mod) != "cli":
                broken.append(f"{mod} imports {dep}: nothing below the command line may")
    assert broken == [], "docs/architecture.md, \"What may import what\", no longer holds:\n" + "\n".join(sorted(broken))


def test_the_conditions_page_names_every_reason_the_code_writes():
    """docs/reference/conditions.md has a row for each reason found in the package: every
    ``Verdict(phase, "Reason", ...)`` and ``_stalled("Reason", ...)``, every server refusal
    ``Refused("Reason", ...)`` and every
    failure kind of job/observations.py."""
    reasons: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        reasons |= set(re.findall(r'\b(?:Verdict\(\s*\w+,|Refused\(|_stalled\()\s*"([A-Z][A-Za-z]+)"', text))
    reasons |= set(re.findall(r'^[A-Z_]+ = "([A-Z][A-Za-z]+)"', (PACKAGE / "job" / "observations.py").read_text(), re.M))
    assert {"Stopping", "Deleting", "JobNotFound", "ElasticsearchUnavailable", "SecretNotAllowed", "InvalidConfig"} <= reasons
    page = (REPO / "docs" / "reference" / "conditions.md").read_text()
    rows = {cell for line in page.splitlines() if line.startswith("| `") for cell in re.findall(r"`([A-Za-z]+)`", line.split(" | ")[0])}
    assert sorted(reasons - rows) == [], "docs/reference/conditions.md has no row for these reasons"


# --- runtime code imports neither the tests nor the tooling --------------------------------------

RUNTIME = (REPO / "operator" / "rollup_operator", REPO / "emulator" / "es_rollup_emulator")
NOT_FROM_RUNTIME = ("tests", "devtools", "tools")  # tools/: what devtools/ was before issue 23


def imports_of_tests_or_tooling(roots: tuple[Path, ...] = RUNTIME, root: Path = REPO) -> list[str]:
    """``file:line imports name`` for every import (lazy ones included) of tests or tooling in the runtime code."""
    import ast

    found = []
    for base in roots:
        for path in sorted(base.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    if name.split(".", 1)[0] in NOT_FROM_RUNTIME:
                        found.append(f"{path.relative_to(root).as_posix()}:{node.lineno} imports {name}")
    return found


def test_the_runtime_code_imports_neither_tests_nor_tooling():
    assert all(r.is_dir() for r in RUNTIME)
    assert imports_of_tests_or_tooling() == []


def test_an_import_of_the_tooling_or_the_tests_is_found(tmp_path):
    pkg = tmp_path / "operator" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "ok.py").write_text("import os\nfrom . import tests\nfrom testsuite import x\n")
    (pkg / "bad.py").write_text("import devtools.harness.build\n\ndef f():\n    from tests.support import fake_kube\n    import tools.trace_stop\n")
    assert imports_of_tests_or_tooling((pkg,), tmp_path) == [
        "operator/pkg/bad.py:1 imports devtools.harness.build", "operator/pkg/bad.py:4 imports tests.support",
        "operator/pkg/bad.py:5 imports tools.trace_stop"]
