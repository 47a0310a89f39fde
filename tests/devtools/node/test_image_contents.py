"""What the built images hold (devtools/harness/images.py): the operator image carries the operator and
not the Elasticsearch emulator (issue 23: the emulator is its own distribution, emulator/); the
emulator image, used only by the single-node e2e tests, carries it. Read from the OCI archives the
node imports, layer by layer, so this is the image users would get from the same Dockerfile."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest

from devtools.harness import images, node

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built():
    reason = node.skip_reason()
    if reason:
        pytest.skip(reason)
    return images.Builder().all()


def paths_in(archive) -> set[str]:
    """Every path in every layer of an OCI archive (tar of index.json, manifests and blobs)."""
    out: set[str] = set()
    with tarfile.open(archive) as oci:
        def blob(digest: str) -> bytes:
            return oci.extractfile("blobs/" + digest.replace(":", "/")).read()
        index = json.loads(oci.extractfile("index.json").read())
        for m in index["manifests"]:
            manifest = json.loads(blob(m["digest"]))
            for layer in manifest["layers"]:
                data = blob(layer["digest"])
                if data[:2] == b"\x1f\x8b":
                    data = gzip.decompress(data)
                with tarfile.open(fileobj=io.BytesIO(data)) as t:
                    out.update(n.lstrip("./") for n in t.getnames())
    return out


def test_the_operator_image_has_no_emulator(built):
    paths = paths_in(built["operator"].archive)
    assert any(p.endswith("site-packages/rollup_operator/job/decide.py") for p in paths), "not the operator's image"
    assert not [p for p in paths if "es_rollup_emulator" in p or "rollup_operator/testing" in p]
    assert not [p for p in paths if p.endswith("bin/es-rollup-emulator")]


def test_the_emulator_image_has_it(built):
    paths = paths_in(built["emulator"].archive)
    assert "opt/emulator/es_rollup_emulator/server.py" in paths
