"""Where ``export`` and ``migration-plan`` read from: connection options, the client, specific errors.

Credentials come from environment variables (``--password-env VAR``, ``--api-key-env VAR``) or
from the Secret an ElasticsearchConnection names (``--from-connection NS/NAME``), never from argv.
Every failure becomes a :class:`CommandError` with one specific sentence and its own exit code;
nothing is printed on stdout then.
"""

from __future__ import annotations

import argparse
import base64
import os
import ssl
import warnings
from dataclasses import dataclass
from typing import Any, cast

from rollup_operator.job.config import InvalidSpec
from rollup_operator.job.connection_spec import SecretKeyRef, connection_spec_from_body

#: exit codes (documented in docs/adoption.md)
EXIT_USAGE, EXIT_UNREACHABLE, EXIT_UNAUTHORIZED, EXIT_FORBIDDEN, EXIT_NOT_ES, EXIT_EXPORT, EXIT_KUBE = 2, 3, 4, 5, 6, 7, 8


class CommandError(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


@dataclass
class Target:
    """An Elasticsearch endpoint with its credentials (never printed)."""

    url: str
    urls: tuple[str, ...] = ()  # all node URLs (a connection may list several); url is the first
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    ca_file: str | None = None
    ca_pem: str | None = None
    insecure: bool = False
    connection: str = "elasticsearch"  # the ElasticsearchConnection the exported jobs name
    namespace: str | None = None
    from_connection: bool = False
    timeout: float = 30.0

    @property
    def auth(self) -> str | None:
        return "apiKey" if self.api_key else "basic" if self.username else None


def add_command(sub: Any, name: str, *, help: str, description: str, job_help: str, outputs: tuple[str, ...],
                output_help: str) -> argparse.ArgumentParser:
    """The parser of a subcommand that reads a server's rollup jobs: the connection options,
    ``--job`` (repeatable) and ``-o/--output`` (the first of ``outputs`` is the default)."""
    p = sub.add_parser(name, help=help, description=description,
                       allow_abbrev=False)  # --password must not pass for --password-env
    add_connection_options(p)
    p.add_argument("--job", action="append", default=[], metavar="ID", help=job_help)
    p.add_argument("--output", "-o", choices=outputs, default=outputs[0], help=output_help)
    return cast(argparse.ArgumentParser, p)  # ``sub`` is argparse's private _SubParsersAction


def add_connection_options(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="Elasticsearch URL, e.g. https://es:9200 (no credentials in it)")
    where.add_argument("--from-connection", metavar="NS/NAME",
                       help="read the ElasticsearchConnection NS/NAME and its Secrets through the current kubeconfig")
    p.add_argument("--username", help="basic auth user (the password comes from --password-env)")
    p.add_argument("--password-env", metavar="VAR", help="environment variable holding the password")
    p.add_argument("--api-key-env", metavar="VAR", help="environment variable holding an API key (encoded, or id:key)")
    p.add_argument("--ca-file", metavar="F", help="PEM file of the CA that signed the server's certificate")
    p.add_argument("--insecure-skip-verify", action="store_true", help="do not verify the server's certificate (tests only)")
    p.add_argument("--namespace", metavar="NS", help="namespace written into the manifests (default: none, use kubectl -n)")
    p.add_argument("--connection", metavar="NAME", default="elasticsearch",
                   help="name of the ElasticsearchConnection the RollupJobs refer to (default: elasticsearch)")
    p.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig for --from-connection (default $KUBECONFIG)")
    p.add_argument("--request-timeout", type=float, default=30.0, metavar="S", help="client timeout per request in seconds (default: 30)")


def _env(var: str, what: str) -> str:
    value = os.environ.get(var)
    if not value:
        raise CommandError(f"{what}: environment variable {var} is not set or empty", EXIT_USAGE)
    return value


def target_from_args(args: argparse.Namespace) -> Target:
    if args.from_connection:
        return _target_from_connection(args)
    if "@" in args.url.split("//", 1)[-1].split("/", 1)[0]:
        raise CommandError("--url must not carry credentials; use --username with --password-env, or --api-key-env", EXIT_USAGE)
    if args.username and args.api_key_env:
        raise CommandError("use either --username/--password-env or --api-key-env, not both", EXIT_USAGE)
    t = Target(url=args.url, ca_file=args.ca_file, insecure=args.insecure_skip_verify, connection=args.connection,
               namespace=args.namespace, timeout=args.request_timeout)
    if args.username:
        if not args.password_env:
            raise CommandError("--username needs --password-env VAR (passwords are never taken from the command line)", EXIT_USAGE)
        t.username, t.password = args.username, _env(args.password_env, "--password-env")
    elif args.password_env:
        raise CommandError("--password-env needs --username", EXIT_USAGE)
    if args.api_key_env:
        t.api_key = _env(args.api_key_env, "--api-key-env")
    return t


def _target_from_connection(args: argparse.Namespace) -> Target:
    from lightkube import ApiError, Client
    from lightkube.resources.core_v1 import Secret

    from rollup_operator.kube.client import ConnectionResource, load_config

    ns, _, name = args.from_connection.partition("/")
    if not ns or not name:
        raise CommandError("--from-connection takes NAMESPACE/NAME", EXIT_USAGE)

    def read(resource: Any, obj_name: str, what: str, missing: str) -> Any:
        """One GET: a 404 says ``missing``, a 401/403 that Kubernetes refused to read ``what``."""
        try:
            return api.get(resource, obj_name, namespace=ns)
        except ApiError as e:
            code = int(getattr(e.status, "code", 0) or 0)
            if code == 404:
                raise CommandError(missing, EXIT_KUBE) from None
            if code in (401, 403):
                raise CommandError(f"Kubernetes refused to read {what} ({code})", EXIT_KUBE) from None
            raise

    try:
        api = Client(load_config(args.kubeconfig), trust_env=False)
        where = f"ElasticsearchConnection {ns}/{name}"
        body = read(ConnectionResource, name, where, f"{where} not found").to_dict()
        spec = connection_spec_from_body(body)
        secrets: dict[str, dict[str, str]] = {}

        def secret(ref: SecretKeyRef) -> str:
            if ref.name not in secrets:
                where = f"Secret {ns}/{ref.name}"
                secrets[ref.name] = read(Secret, ref.name, where, f"{where} named by the connection not found").data or {}
            raw = secrets[ref.name].get(ref.key)
            if raw is None:
                raise CommandError(f"Secret {ns}/{ref.name} has no key {ref.key!r}", EXIT_KUBE)
            return base64.b64decode(raw).decode()

        t = Target(url=spec.urls[0], urls=spec.urls, insecure=spec.insecure_skip_verify, connection=name, namespace=ns,
                   from_connection=True, timeout=args.request_timeout)
        if spec.username:
            assert spec.password is not None  # the spec parser pairs them
            t.username, t.password = secret(spec.username), secret(spec.password)
        if spec.api_key:
            t.api_key = secret(spec.api_key)
        if spec.ca:
            t.ca_pem = secret(spec.ca)
        return t
    except InvalidSpec as e:
        raise CommandError(f"ElasticsearchConnection {ns}/{name} cannot be used: {e}", EXIT_KUBE) from None
    except CommandError:
        raise
    except Exception as e:  # kubeconfig missing, API server unreachable
        raise CommandError(f"cannot read ElasticsearchConnection {ns}/{name} through the kubeconfig: {e}", EXIT_KUBE) from None


def client(t: Target) -> Any:
    from elasticsearch import Elasticsearch

    kw: dict[str, Any] = {"request_timeout": t.timeout, "max_retries": 0}
    if t.username:
        kw["basic_auth"] = (t.username, t.password or "")
    if t.api_key:
        kw["api_key"] = tuple(t.api_key.split(":", 1)) if ":" in t.api_key else t.api_key
    if t.url.startswith("https"):
        if t.insecure:
            kw["verify_certs"], kw["ssl_show_warn"] = False, False
        elif t.ca_pem or t.ca_file:
            kw["ssl_context"] = ssl.create_default_context(cadata=t.ca_pem) if t.ca_pem else \
                ssl.create_default_context(cafile=t.ca_file)
    return Elasticsearch(list(t.urls or (t.url,)), **kw)


def command_error(e: Exception, t: Target, action: str, privilege: str = "monitor_rollup") -> CommandError:
    """One sentence for a failed call (never with credentials in it)."""
    import elasticsearch
    from elastic_transport import TlsError

    if isinstance(e, TlsError):
        return CommandError(f"TLS error talking to {t.url}: {e.message if hasattr(e, 'message') else e}; "
                            "give --ca-file (or --insecure-skip-verify for tests)", EXIT_UNREACHABLE)
    if isinstance(e, (elasticsearch.ConnectionError, elasticsearch.ConnectionTimeout)):
        return CommandError(f"cannot reach Elasticsearch at {t.url}: {getattr(e, 'message', e)}", EXIT_UNREACHABLE)
    if isinstance(e, elasticsearch.UnsupportedProductError):
        return CommandError(f"{t.url} does not answer as Elasticsearch (no X-Elastic-Product header): check --url",
                            EXIT_NOT_ES)
    if isinstance(e, elasticsearch.AuthenticationException):
        who = f"user {t.username!r}" if t.username else "the API key" if t.api_key else "anonymous requests"
        return CommandError(f"Elasticsearch refused the credentials of {who} (401) while trying to {action}", EXIT_UNAUTHORIZED)
    if isinstance(e, elasticsearch.AuthorizationException):
        return CommandError(f"Elasticsearch denied {action} (403): the user needs the cluster privilege {privilege}. "
                            f"Server said: {_reason(e)}", EXIT_FORBIDDEN)
    if isinstance(e, elasticsearch.ApiError):
        return CommandError(f"Elasticsearch answered {e.meta.status} to {action}: {_reason(e)}", EXIT_UNREACHABLE)
    return CommandError(f"{action} failed: {e}", EXIT_UNREACHABLE)


def _reason(e: Exception) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("reason"))
    return str(getattr(e, "message", e))


def read_jobs(es: Any, t: Target, *, opensearch: str | None = None) -> list[dict[str, Any]]:
    """The one read both commands need: ``GET _rollup/job/_all``. A server that is not Elasticsearch
    but OpenSearch has its jobs read in its own dialect (opensearch_jobs.py) when ``opensearch`` is
    None; else ``opensearch`` says why the command does not apply there."""
    import elasticsearch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GeneralAvailabilityWarning, the 9.x deprecation header
        try:
            return list(es.rollup.get_jobs(id="_all").body.get("jobs") or [])
        except Exception as e:
            from rollup_operator.cli import opensearch_jobs
            from rollup_operator.engine.elasticsearch.responses import from_elasticsearch

            foreign = isinstance(e, elasticsearch.UnsupportedProductError) or (
                isinstance(e, elasticsearch.ApiError) and not from_elasticsearch(e.meta.headers if e.meta is not None else None))
            if not foreign or not opensearch_jobs.is_opensearch(es):
                raise command_error(e, t, "read rollup jobs (GET _rollup/job/_all)") from None
            try:
                if opensearch is not None:
                    raise CommandError(f"{t.url} is OpenSearch: {opensearch}", EXIT_NOT_ES)
                return opensearch_jobs.read_jobs(es)
            except CommandError:
                raise
            except Exception as e2:
                raise command_error(e2, t, "read OpenSearch rollup jobs (GET _plugins/_rollup/jobs)") from None
