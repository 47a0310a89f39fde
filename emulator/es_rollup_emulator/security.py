"""Authentication (Basic and ``ApiKey``) and cluster-privilege authorization.

Security is on when users or API keys are configured. Users are ``{name: (password,
privileges[, roles])}`` or ``{name: {"password": .., "privileges": [..], "roles": [..]}}``; API
keys are ``{id: (key, privileges[, owner])}``. Privileges are cluster privileges: ``all``,
``manage``, ``monitor``, ``manage_rollup``, ``monitor_rollup``.

Messages (401 ``security_exception``):

* no credentials: ``missing authentication credentials for REST request [<uri>]``
* bad user/password: ``unable to authenticate user [<name>] for REST request [<uri>]``
* bad API key (inferred): ``unable to authenticate with provided credentials and anonymous access
  is not allowed for this request`` plus ``additional_unsuccessful_credentials``

``<uri>`` is the request URI including its query string. 401 answers carry ``WWW-Authenticate``
(``Basic``, ``Bearer`` when TLS is on, ``ApiKey``), both as headers and in the error's ``header``.

403 ``security_exception``: ``action [<action>] is unauthorized for user [<name>] with effective
roles [<roles>], this action is granted by the cluster privileges [<privs>]``. The privilege
lists follow ``ClusterPrivilegeResolver.findPrivilegesThatGrant`` (narrowest first):
``[manage_rollup,manage,all]`` for the admin actions and (inferred)
``[monitor_rollup,manage_rollup,monitor,manage,all]`` for ``cluster:monitor/xpack/rollup/get``.
Index APIs (create/delete/mapping/templates) are not modelled per index: they need ``all`` or
``manage`` (a simplification).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from .errors import ESError, security_exception
from .versions import VersionProfile

# action -> privileges that grant it, in the order ES lists them
GRANTING = {
    "cluster:admin/xpack/rollup/put": ["manage_rollup", "manage", "all"],
    "cluster:admin/xpack/rollup/start": ["manage_rollup", "manage", "all"],
    "cluster:admin/xpack/rollup/stop": ["manage_rollup", "manage", "all"],
    "cluster:admin/xpack/rollup/delete": ["manage_rollup", "manage", "all"],
    "cluster:monitor/xpack/rollup/get": ["monitor_rollup", "manage_rollup", "monitor", "manage", "all"],
    "cluster:monitor/main": ["monitor", "manage", "all"],
    "cluster:monitor/health": ["monitor", "manage", "all"],
    "cluster:admin/template/put": ["manage_index_templates", "manage", "all"],
    "cluster:admin/template/delete": ["manage_index_templates", "manage", "all"],
    "cluster:monitor/template/get": ["monitor", "manage_index_templates", "manage", "all"],
}
INDEX_ACTION_PRIVILEGES = ["manage", "all"]


@dataclass
class Principal:
    name: str
    privileges: set[str]
    roles: list[str]
    api_key_id: str | None = None
    api_key_name: str | None = None
    realm: str = "default_native"


@dataclass
class _User:
    password: str
    privileges: set[str]
    roles: list[str]


@dataclass
class Security:
    profile: VersionProfile
    tls: bool = False
    users: dict[str, _User] = field(default_factory=dict)
    api_keys: dict[str, tuple[str, set[str], str]] = field(default_factory=dict)
    enabled: bool = False

    @classmethod
    def build(cls, profile: VersionProfile, users: dict[str, Any] | None, api_keys: dict[str, Any] | None,
              tls: bool = False) -> "Security":
        sec = cls(profile, tls)
        for name, spec in (users or {}).items():
            sec.set_user(name, *_user_spec(spec))
        for key_id, spec in (api_keys or {}).items():
            key, privs, *rest = spec
            sec.set_api_key(key_id, key, privs, rest[0] if rest else "api_key_owner")
        sec.enabled = bool(users) or bool(api_keys)
        return sec

    # -- runtime changes --------------------------------------------------------------------------
    def set_user(self, name: str, password: str, privileges: Any, roles: list[str] | None = None) -> None:
        self.users[name] = _User(password, set(privileges), list(roles) if roles is not None else [f"{name}_role"])
        self.enabled = True

    def set_user_password(self, name: str, password: str) -> None:
        self.users[name].password = password

    def remove_user(self, name: str) -> None:
        self.users.pop(name, None)

    def set_api_key(self, key_id: str, key: str, privileges: Any, owner: str = "api_key_owner") -> None:
        self.api_keys[key_id] = (key, set(privileges), owner)
        self.enabled = True

    def revoke_api_key(self, key_id: str) -> None:
        self.api_keys.pop(key_id, None)

    # -- checks -----------------------------------------------------------------------------------
    def www_authenticate(self) -> list[str]:
        values = [self.profile.www_authenticate_basic]
        if self.tls:
            values.append('Bearer realm="security"')
        values.append("ApiKey")
        return values

    def _unauthenticated(self, reason: str, **metadata: Any) -> ESError:
        return security_exception(reason, 401, metadata=metadata, header={"WWW-Authenticate": self.www_authenticate()})

    def authenticate(self, authorization: str | None, uri: str) -> Principal | None:
        """Return the principal, None when security is off; raise 401 ``ESError``."""
        if not self.enabled:
            return None
        if not authorization:
            raise self._unauthenticated(f"missing authentication credentials for REST request [{uri}]")
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise self._unauthenticated(f"missing authentication credentials for REST request [{uri}]") from None
            name, sep, password = decoded.partition(":")
            user = self.users.get(name)
            if not sep or user is None or user.password != password:
                raise self._unauthenticated(f"unable to authenticate user [{name}] for REST request [{uri}]")
            return Principal(name, set(user.privileges), list(user.roles))
        if scheme == "apikey":
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
                key_id, sep, key = decoded.partition(":")
            except (binascii.Error, UnicodeDecodeError):
                key_id, sep, key = "", "", ""
            entry = self.api_keys.get(key_id)
            if not sep:
                detail = "API key: invalid ApiKey value"
            elif entry is None:
                detail = f"API key: unable to find apikey with id {key_id}"
            elif entry[0] != key:
                detail = f"API key: invalid credentials for API key [{key_id}]"
            else:
                return Principal(entry[2], set(entry[1]), [], api_key_id=key_id, api_key_name=key_id, realm="_es_api_key")
            raise self._unauthenticated(
                "unable to authenticate with provided credentials and anonymous access is not allowed for this request",
                additional_unsuccessful_credentials=detail,
            )
        raise self._unauthenticated(f"missing authentication credentials for REST request [{uri}]")

    def authorize(self, principal: Principal | None, action: str) -> None:
        if principal is None:
            return
        granting = GRANTING.get(action, INDEX_ACTION_PRIVILEGES)
        if principal.privileges & set(granting):
            return
        if principal.api_key_id is not None:
            who = f"API key id [{principal.api_key_id}] of user [{principal.name}]"
        else:
            who = f"user [{principal.name}] with effective roles [{','.join(principal.roles)}]"
        message = f"action [{action}] is unauthorized for {who}"
        if action in GRANTING:
            message += f", this action is granted by the cluster privileges [{','.join(granting)}]"
        raise security_exception(message, 403)

    @staticmethod
    def authenticate_body(principal: Principal) -> dict[str, Any]:
        body: dict[str, Any] = {
            "username": principal.name, "roles": principal.roles, "full_name": None, "email": None,
            "metadata": {}, "enabled": True,
            "authentication_realm": {"name": principal.realm, "type": "native" if principal.api_key_id is None else "_es_api_key"},
            "lookup_realm": {"name": principal.realm, "type": "native" if principal.api_key_id is None else "_es_api_key"},
            "authentication_type": "realm" if principal.api_key_id is None else "api_key",
        }
        if principal.api_key_id is not None:
            body["api_key"] = {"id": principal.api_key_id, "name": principal.api_key_name}
        return body


def _user_spec(spec: Any) -> tuple[str, set[str], list[str] | None]:
    if isinstance(spec, dict):
        return spec["password"], set(spec.get("privileges", [])), spec.get("roles")
    password, privileges, *rest = spec
    return password, set(privileges), (list(rest[0]) if rest else None)
