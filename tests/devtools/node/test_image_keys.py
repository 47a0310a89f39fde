"""Image cache keys (devtools/harness/images.py): the operator image is rebuilt exactly when a file the
Dockerfile copies (or the Dockerfile) changes, not when tests or bytecode do."""

from __future__ import annotations

from devtools.harness import images


def _tree(tmp_path):
    (tmp_path / "operator" / "rollup_operator").mkdir(parents=True)
    (tmp_path / "operator" / "rollup_operator" / "cli.py").write_text("print('x')\n")
    for f in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        (tmp_path / f).write_text(f)
    (tmp_path / "tests").mkdir()
    return tmp_path


def key(root):
    return images._hash(images._tree_digest(root, images.OPERATOR_INPUTS))


def test_operator_key_follows_the_build_inputs_only(tmp_path):
    root = _tree(tmp_path)
    k0 = key(root)
    (root / "tests" / "test_x.py").write_text("x")
    (root / "operator" / "rollup_operator" / "__pycache__").mkdir()
    (root / "operator" / "rollup_operator" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"\0")
    assert key(root) == k0
    (root / "operator" / "rollup_operator" / "cli.py").write_text("print('y')\n")
    k1 = key(root)
    assert k1 != k0
    (root / "Dockerfile").write_text("FROM x")
    assert key(root) != k1


def test_debian_mirror_is_the_one_apt_uses():
    assert images.debian_mirror().startswith(("http://", "https://")) and images.debian_mirror().endswith("/debian")
