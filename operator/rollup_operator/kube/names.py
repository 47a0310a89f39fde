"""Kubernetes object names that a user writes, checked before they become part of a request path.

A name a tenant writes into a spec (a Secret in ``spec.auth``/``spec.tls``, ``spec.connectionRef``)
ends up in an API path such as ``/api/v1/namespaces/<ns>/secrets/<name>``. lightkube formats that
path without encoding it, and an HTTP client normalises dot segments, so a name like
``../../other/secrets/creds`` would read another namespace's Secret. Kubernetes itself only
allows DNS-1123 subdomains as Secret, ConfigMap and custom-resource names, so a name that is not
one can never name a real object: it is refused here, before any request (docs/security.md).

The CRDs carry the same pattern (admission refuses such names); this is the operator's own guard
for objects stored before the pattern existed, or a CRD installed without it. ``safe_path`` is the
last line, in the transport: no request leaves with a dot segment or an encoded slash in its path.
"""

from __future__ import annotations

import re

#: DNS-1123 subdomain (k8s.io/apimachinery validation.IsDNS1123Subdomain): lowercase alphanumerics,
#: '-' and '.', starting and ending with an alphanumeric, at most 253 characters.
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN)
MAX_NAME = 253

#: What a message says a name must be.
RULE = "a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters"


class InvalidName(ValueError):
    """A name that cannot be a Kubernetes object name (so it cannot be used in a request path)."""


def is_object_name(name: object) -> bool:
    return isinstance(name, str) and 0 < len(name) <= MAX_NAME and _SUBDOMAIN.match(name) is not None


def require(what: str, name: object) -> str:
    """``name`` if it is a valid object name, else InvalidName naming ``what`` (never the value)."""
    if not is_object_name(name):
        raise InvalidName(f"{what} is not a valid object name: it must be {RULE}")
    return name  # type: ignore[return-value]


_BAD_SEGMENT = re.compile(r"(^|/)(\.|\.\.|%2e|%2e%2e|\.%2e|%2e\.)(/|$)", re.IGNORECASE)


def safe_path(path: str) -> bool:
    """True if a request path has no dot segment (plain or percent-encoded) and no encoded slash."""
    lowered = path.lower()
    return not _BAD_SEGMENT.search(path) and "%2f" not in lowered and "%5c" not in lowered and "\\" not in path
