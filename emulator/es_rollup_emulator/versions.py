"""Version profiles: what changes between the Elasticsearch releases the emulator imitates.

One :class:`VersionProfile` is built from a version string such as ``"8.17.0"``. Every
version-dependent behaviour of the emulator asks the profile instead of comparing version
numbers itself, so the rules live in one place:

=====================================  ======  ==========  ======
behaviour                              7.17.x  8.0-8.14    8.15+ / 9.x
=====================================  ======  ==========  ======
start of a ``started`` job             500     no-op       no-op
stop ``wait_for_completion`` timeout   500     500         500 (8.x) / 429 (9.x)
new job needs rollup usage             no      no          yes
deprecation ``Warning`` on rollup      no      no          9.x only
accepted ``compatible-with`` majors    any*    7, 8        8: 7, 8 / 9: 8, 9
=====================================  ======  ==========  ======

``*`` inferred: 7.x servers strip the ``vnd.elasticsearch`` media type parameters instead of
checking them (elastic/elasticsearch#63071) and answer ``application/json; charset=UTF-8``.

The Lucene versions and build metadata shown in ``GET /`` are a best-effort table (inferred from
release notes); tests should not rely on them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

DEPRECATION_MESSAGE = (
    "The rollup functionality will be removed in Elasticsearch 10.0. See docs for more information."
)

# (major, minor) -> lucene version; inferred from release notes, for GET / only.
_LUCENE = {
    (7, 17): "8.11.3",
    (8, 0): "9.0.0", (8, 1): "9.0.0", (8, 2): "9.1.0", (8, 3): "9.2.0", (8, 4): "9.3.0",
    (8, 5): "9.4.1", (8, 6): "9.4.2", (8, 7): "9.5.0", (8, 8): "9.6.0", (8, 9): "9.7.0",
    (8, 10): "9.7.0", (8, 11): "9.8.0", (8, 12): "9.9.2", (8, 13): "9.10.0", (8, 14): "9.10.0",
    (8, 15): "9.11.1", (8, 16): "9.12.0", (8, 17): "9.12.0", (8, 18): "9.12.1", (8, 19): "9.12.2",
    (9, 0): "10.1.0", (9, 1): "10.2.2", (9, 2): "10.3.1",
}

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)(-SNAPSHOT)?$")


@dataclass(frozen=True)
class VersionProfile:
    """Behaviour switches derived from an Elasticsearch version number."""

    number: str
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, version: str) -> "VersionProfile":
        m = _VERSION_RE.match(version.strip())
        if not m:
            raise ValueError(f"version must look like 8.17.0, got {version!r}")
        major, minor, patch = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if major not in (7, 8, 9):
            raise ValueError(f"only 7.x, 8.x and 9.x profiles are emulated, got {version!r}")
        return cls(version.strip(), major, minor, patch)

    # -- ordering helpers -------------------------------------------------------------------
    def at_least(self, major: int, minor: int = 0) -> bool:
        return (self.major, self.minor) >= (major, minor)

    # -- rollup rules -----------------------------------------------------------------------
    @property
    def start_started_is_error(self) -> bool:
        """7.x refuses to start a job that is not STOPPED (8.0 made it a no-op)."""
        return self.major < 8

    @property
    def requires_rollup_usage(self) -> bool:
        """8.15+: new jobs only in clusters that already use rollups."""
        return self.at_least(8, 15)

    @property
    def stop_timeout_status(self) -> int:
        """HTTP status of ``timeout_exception`` (ElasticsearchTimeoutException): 429 from 9.0."""
        return 429 if self.major >= 9 else 500

    @property
    def rollup_deprecation_warning(self) -> bool:
        return self.major >= 9

    @property
    def rollup_version_meta(self) -> str:
        """Value of ``_meta.rollup-version`` written into a new rollup index.

        Newer releases write an empty string for backwards compatibility; 7.x wrote the node
        version (inferred cut-over: 8.0)."""
        return self.number if self.major < 8 else ""

    @property
    def status_has_upgraded_doc_id(self) -> bool:
        """7.x job status carries ``upgraded_doc_id: true`` (removed in 8.0)."""
        return self.major < 8

    # -- REST layer -------------------------------------------------------------------------
    @property
    def checks_compatible_with(self) -> bool:
        return self.major >= 8

    @property
    def compatible_majors(self) -> tuple[int, int]:
        """(current, minimum supported) REST API majors."""
        return (self.major, self.major - 1)

    @property
    def json_content_type(self) -> str:
        return "application/json; charset=UTF-8" if self.major < 8 else "application/json"

    def compat_content_type(self, version: int) -> str:
        return f"application/vnd.elasticsearch+json;compatible-with={version}"

    @property
    def www_authenticate_basic(self) -> str:
        # 8.x added the comma between the auth-params (inferred: 7.x lacked it).
        if self.major < 8:
            return 'Basic realm="security" charset="UTF-8"'
        return 'Basic realm="security", charset="UTF-8"'

    # -- cluster info -------------------------------------------------------------------------
    @property
    def build_hash(self) -> str:
        return hashlib.sha1(f"elasticsearch-{self.number}".encode()).hexdigest()

    @property
    def lucene_version(self) -> str:
        return _LUCENE.get((self.major, self.minor), {7: "8.11.3", 8: "9.12.0", 9: "10.2.2"}[self.major])

    @property
    def minimum_wire_compatibility_version(self) -> str:
        return {7: "6.8.0", 8: "7.17.0", 9: "8.18.0"}[self.major]

    @property
    def minimum_index_compatibility_version(self) -> str:
        return {7: "6.0.0-beta1", 8: "7.0.0", 9: "8.0.0"}[self.major]

    @property
    def warning_header(self) -> str:
        """The ``Warning`` header value ES emits for the rollup deprecation."""
        return f'299 Elasticsearch-{self.number}-{self.build_hash} "{DEPRECATION_MESSAGE}"'
