"""The Secrets an ElasticsearchConnection names: read, checked, and turned into client arguments.

Rules (docs/security.md):

* **Opt-in.** A Secret is used only if it carries the label ``rollup.esops.dev/credentials: "true"``.
  Whoever may create ElasticsearchConnections in a namespace could otherwise make the operator send
  any Secret of that namespace (say, a ServiceAccount token) to a server of their choosing. A
  Secret without the label gives ``SecretNotAllowed``, and nothing of it is used or described.
* **No existence oracle.** A Secret that does not exist gives the same reason and the same message
  as one without the label (``not_allowed``), so a connection's author who may not read Secrets
  cannot tell the two apart. Any other failed read is ``SecretUnreadable`` with the HTTP status
  only (the API server's text, which the log has, is not repeated).
* **Nothing about a Secret's content is told.** Messages name the Secret and the key the
  connection asked for, never the value and never the Secret's other key names.
* **Odd bytes are refused, not sent.** Values must be UTF-8 without control characters (CR, LF,
  NUL...) once surrounding white space is trimmed; an API key must be printable ASCII, a username
  must not contain ':'. Otherwise ``InvalidConnection`` names the Secret and the key.

``resolve`` is the only entry point with I/O (it awaits the Secret getter); the rest is pure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import ssl
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from rollup_operator.job.connection_spec import ConnectionSpec, SecretKeyRef
from rollup_operator.job.spec import GROUP
from rollup_operator.job.observations import INVALID_CONNECTION, SECRET_KEY_NOT_FOUND, SECRET_NOT_ALLOWED, SECRET_UNREADABLE, Failure

log = logging.getLogger(__name__)

#: The label a Secret must carry (value "true") to be usable by an ElasticsearchConnection.
LABEL = f"{GROUP}/credentials"
LABEL_VALUE = "true"
#: Reason of the one-time Warning event for credentials sent over plain http://.
INSECURE_TRANSPORT = "InsecureTransport"

#: Reads one Secret object (as the API server returns it), or None if it does not exist.
SecretGetter = Callable[[str, str], Awaitable["Mapping[str, Any] | None"]]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PRINTABLE_ASCII = re.compile(r"^[\x21-\x7e]+$")


@dataclass(frozen=True)
class Credentials:
    kwargs: dict[str, Any]  # keyword arguments for AsyncElasticsearch (basic_auth, api_key, ssl_context...)
    fingerprint: str  # changes when the spec or a used Secret value changes


def decode_secret(obj: Mapping[str, Any]) -> dict[str, bytes] | None:
    """A Secret's values as bytes (``data`` is base64, ``stringData`` is plain); None if undecodable."""
    try:
        data = {k: base64.b64decode(v, validate=True) for k, v in (obj.get("data") or {}).items()}
    except (binascii.Error, ValueError, TypeError):
        return None
    data.update({k: str(v).encode() for k, v in (obj.get("stringData") or {}).items()})
    return data


def allowed(obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(LABEL) == LABEL_VALUE


def not_allowed(namespace: str, name: str) -> Failure:
    """The one failure for a Secret that does not exist and for one without the label: the same
    reason and message, byte for byte, whichever it is."""
    return Failure(SECRET_NOT_ALLOWED, f"Secret {namespace}/{name} does not exist or is not labelled {LABEL}={LABEL_VALUE}; "
                                       f"an ElasticsearchConnection may only use Secrets that opt in with this label")


def unreadable(namespace: str, name: str, error: BaseException) -> Failure:
    """A read that failed otherwise (403 from the operator's RBAC, the API server unreachable): its
    HTTP status or the kind of error, never the API server's text, and nothing about existence."""
    status = getattr(error, "status", None)
    why = f"the Kubernetes API answered HTTP {status}" if isinstance(status, int) and status else \
        f"the request to the Kubernetes API failed ({type(error).__name__})"
    hint = "; check that the operator may get Secrets in this namespace" if status == 403 else "; retried on the next sync"
    return Failure(SECRET_UNREADABLE, f"the operator cannot read Secret {namespace}/{name}: {why}{hint}")


def text_value(raw: bytes, where: str, *, what: str) -> str | Failure:
    """A Secret value as text for a header: UTF-8, trimmed, no control characters."""
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return Failure(INVALID_CONNECTION, f"{where} is not valid UTF-8 text; store the {what} as UTF-8")
    if not text:
        return Failure(INVALID_CONNECTION, f"{where} is empty")
    if _CONTROL.search(text):
        return Failure(INVALID_CONNECTION, f"{where} contains a control character (such as CR, LF or NUL) inside the "
                                           f"value; store the {what} without them")
    return text


def api_key_value(raw: bytes, where: str) -> str | tuple[str, str] | Failure:
    text = text_value(raw, where, what="API key")
    if isinstance(text, Failure):
        return text
    if not _PRINTABLE_ASCII.match(text):
        return Failure(INVALID_CONNECTION, f"{where} is not an API key: it must be printable ASCII without spaces "
                                           f"(the encoded key, or id:key)")
    return tuple(text.split(":", 1)) if ":" in text else text  # type: ignore[return-value]


def insecure_transport_warning(spec: ConnectionSpec | None) -> str | None:
    """The Warning to post (once) when credentials go to a plain ``http://`` URL, else None."""
    if spec is None or not (spec.username or spec.api_key):
        return None
    plain = [u for u in spec.urls if u.lower().startswith("http://")]
    if not plain:
        return None
    kind = "an API key" if spec.api_key else "a username and password"
    return (f"ElasticsearchConnection {spec.namespace}/{spec.name} sends {kind} over plain HTTP to "
            f"{', '.join(plain)}: anyone on the network path can read them; use https:// (spec.tls)")


def insecure_event_name(name: str, uid: str | None, generation: Any) -> str:
    """A fixed name for the InsecureTransport Event of one connection generation (posted once)."""
    return f"{name}.insecure-transport.{(uid or 'nouid')[:8]}-g{generation or 0}"


async def resolve(spec: ConnectionSpec, get_secret: SecretGetter) -> Credentials | Failure:
    """Client keyword arguments from the spec and its Secrets, or the failure that stops it."""
    secrets: dict[str, dict[str, bytes]] = {}
    for name in sorted(spec.secret_names):
        try:
            obj = await get_secret(spec.namespace, name)
        except Exception as e:  # noqa: BLE001 - e.g. RBAC; say so in status rather than crash
            log.warning("cannot read Secret %s/%s: %s", spec.namespace, name, e)  # the operator's log, for its admin
            return unreadable(spec.namespace, name, e)
        if obj is None or not allowed(obj):  # indistinguishable on purpose: see "No existence oracle"
            return not_allowed(spec.namespace, name)
        data = decode_secret(obj)
        if data is None:
            return Failure(INVALID_CONNECTION, f"Secret {spec.namespace}/{name} has data that is not base64")
        secrets[name] = data

    def value(ref: SecretKeyRef) -> bytes | Failure:
        v = secrets[ref.name].get(ref.key)
        if v is None:  # the Secret's other keys are not listed: they are not the tenant's to learn
            return Failure(SECRET_KEY_NOT_FOUND, f"Secret {spec.namespace}/{ref.name} has no key {ref.key!r}")
        return v

    def where(ref: SecretKeyRef) -> str:
        return f"Secret {spec.namespace}/{ref.name} key {ref.key!r}"

    kwargs: dict[str, Any] = {}
    digest = hashlib.sha256(repr(spec).encode())
    if spec.username and spec.password:
        user, pw = value(spec.username), value(spec.password)
        for v in (user, pw):
            if isinstance(v, Failure):
                return v
        u = text_value(user, where(spec.username), what="username")  # type: ignore[arg-type]
        if isinstance(u, Failure):
            return u
        if ":" in u:
            return Failure(INVALID_CONNECTION, f"{where(spec.username)} contains ':', which a Basic username cannot")
        p = text_value(pw, where(spec.password), what="password")  # type: ignore[arg-type]
        if isinstance(p, Failure):
            return p
        kwargs["basic_auth"] = (u, p)
        digest.update(user + b"\0" + pw)  # type: ignore[operator]
    if spec.api_key:
        key = value(spec.api_key)
        if isinstance(key, Failure):
            return key
        k = api_key_value(key, where(spec.api_key))
        if isinstance(k, Failure):
            return k
        kwargs["api_key"] = k
        digest.update(key)
    if any(u.lower().startswith("https") for u in spec.urls):
        if spec.insecure_skip_verify:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            kwargs["ssl_context"] = ctx
            kwargs["ssl_show_warn"] = False
        elif spec.ca:
            ca = value(spec.ca)
            if isinstance(ca, Failure):
                return ca
            try:
                kwargs["ssl_context"] = ssl.create_default_context(cadata=ca.decode("ascii"))
            except (ssl.SSLError, ValueError) as e:  # UnicodeDecodeError is a ValueError
                detail = "" if isinstance(e, UnicodeDecodeError) else f": {e}"
                return Failure(INVALID_CONNECTION, f"the CA certificate in {where(spec.ca)} is not valid PEM{detail}")
            digest.update(ca)
    return Credentials(kwargs, digest.hexdigest())
