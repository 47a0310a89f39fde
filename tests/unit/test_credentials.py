"""credentials.py: Secrets opt in, never reveal their keys or values, odd bytes refused (issue 12, items 2 and 5)."""

import asyncio
import base64

import pytest
import trustme

from rollup_operator.engine import credentials
from rollup_operator.job.connection_spec import connection_spec_from_body
from rollup_operator.job.observations import INVALID_CONNECTION, SECRET_KEY_NOT_FOUND, SECRET_NOT_ALLOWED, SECRET_UNREADABLE, Failure

LABELS = {credentials.LABEL: "true"}


def secret(data: dict[str, bytes], labels=LABELS, string_data=None):
    return {"metadata": {"name": "s", "labels": labels}, "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
            **({"stringData": string_data} if string_data else {})}


def conn(url="https://es:9200", **spec):
    return connection_spec_from_body({"metadata": {"name": "c", "namespace": "ns", "generation": 1}, "spec": {"url": url, **spec}})


BASIC = {"auth": {"basic": {"secretRef": {"name": "s"}}}}
APIKEY = {"auth": {"apiKey": {"secretRef": {"name": "s"}}}}


def resolve(spec, secrets: dict):
    async def get(ns, name):
        assert ns == "ns"
        return secrets.get(name)
    return asyncio.run(credentials.resolve(spec, get))


def test_a_labelled_secret_gives_basic_auth_trimmed():
    out = resolve(conn(**BASIC), {"s": secret({"username": b"op\n", "password": b" pw \n"})})
    assert out.kwargs["basic_auth"] == ("op", "pw")


@pytest.mark.parametrize("labels", [None, {}, {credentials.LABEL: "false"}, {credentials.LABEL: "True"}, {"other": "true"}])
def test_a_secret_without_the_opt_in_label_is_not_used(labels):
    out = resolve(conn(**BASIC), {"s": secret({"username": b"op", "password": b"TOPSECRET"}, labels=labels)})
    assert isinstance(out, Failure) and out.kind == SECRET_NOT_ALLOWED
    assert "Secret ns/s" in out.message and credentials.LABEL in out.message
    assert "username" not in out.message and "password" not in out.message and "TOPSECRET" not in out.message


def test_an_unlabelled_secret_reveals_not_even_whether_the_key_exists():
    a = resolve(conn(auth={"basic": {"secretRef": {"name": "s"}, "passwordKey": "token"}}),
                {"s": secret({"token": b"x", "ca.crt": b"y"}, labels=None)})
    b = resolve(conn(auth={"basic": {"secretRef": {"name": "s"}, "passwordKey": "guess"}}),
                {"s": secret({"token": b"x", "ca.crt": b"y"}, labels=None)})
    assert a == b and a.kind == SECRET_NOT_ALLOWED


def test_a_missing_key_does_not_list_the_other_keys():
    out = resolve(conn(auth={"basic": {"secretRef": {"name": "s"}, "passwordKey": "guess"}}),
                  {"s": secret({"username": b"op", "token": b"x", "ca.crt": b"y"})})
    assert out.kind == SECRET_KEY_NOT_FOUND and out.message == "Secret ns/s has no key 'guess'"


@pytest.mark.parametrize("spec", [BASIC, APIKEY, {"tls": {"caSecretRef": {"name": "s"}}}])
def test_a_missing_secret_and_an_unlabelled_one_are_the_same_failure(spec):
    """No existence oracle: whoever may write connections but not read Secrets learns nothing."""
    missing = resolve(conn(**spec), {})
    unlabelled = resolve(conn(**spec), {"s": secret({"username": b"op", "password": b"pw", "api_key": b"k", "ca.crt": b"x"}, labels=None)})
    assert missing == unlabelled and missing.kind == SECRET_NOT_ALLOWED
    assert missing.message == (f"Secret ns/s does not exist or is not labelled {credentials.LABEL}=true; "
                               "an ElasticsearchConnection may only use Secrets that opt in with this label")


def test_every_secret_must_opt_in_the_ca_too():
    ca = trustme.CA().cert_pem.bytes()
    spec = conn(tls={"caSecretRef": {"name": "ca"}}, **BASIC)
    out = resolve(spec, {"s": secret({"username": b"op", "password": b"pw"}), "ca": secret({"ca.crt": ca}, labels=None)})
    assert out.kind == SECRET_NOT_ALLOWED and "Secret ns/ca" in out.message
    ok = resolve(spec, {"s": secret({"username": b"op", "password": b"pw"}), "ca": secret({"ca.crt": ca})})
    assert "ssl_context" in ok.kwargs


@pytest.mark.parametrize("key,value,needle", [
    ("password", b"\xff\xfepw", "is not valid UTF-8"),
    ("password", b"p\r\nw", "contains a control character"),
    ("password", b"p\x00w", "contains a control character"),
    ("password", b"p\tw", "contains a control character"),
    ("password", b"\n\n", "is empty"),
    ("username", b"o\nX-Injected: 1", "contains a control character"),
    ("username", b"a:b", "contains ':'"),
    ("username", b"\xc3\x28", "is not valid UTF-8"),
])
def test_odd_bytes_in_basic_auth_are_invalid_connection_naming_secret_and_key(key, value, needle):
    data = {"username": b"op", "password": b"pw", key: value}
    out = resolve(conn(**BASIC), {"s": secret(data)})
    assert isinstance(out, Failure) and out.kind == INVALID_CONNECTION, out
    assert f"Secret ns/s key '{key}'" in out.message and needle in out.message
    assert repr(value) not in out.message and value.decode("latin-1") not in out.message


@pytest.mark.parametrize("value,needle", [
    (b"abc\r\ndef", "contains a control character"), (b"ab\x00c", "contains a control character"),
    (b"\xff\xff", "is not valid UTF-8"), (b"cl\xc3\xa9", "printable ASCII"), (b"id key", "printable ASCII"),
])
def test_odd_bytes_in_an_api_key(value, needle):
    out = resolve(conn(**APIKEY), {"s": secret({"api_key": value})})
    assert out.kind == INVALID_CONNECTION and "Secret ns/s key 'api_key'" in out.message and needle in out.message


def test_api_keys_encoded_and_id_colon_key():
    assert resolve(conn(**APIKEY), {"s": secret({"api_key": b"VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==\n"})}).kwargs[
        "api_key"] == "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
    assert resolve(conn(**APIKEY), {"s": secret({"api_key": b"id1:key1"})}).kwargs["api_key"] == ("id1", "key1")


def test_a_ca_that_is_not_text_is_invalid_without_quoting_it():
    out = resolve(conn(tls={"caSecretRef": {"name": "s"}}), {"s": secret({"ca.crt": b"\xff\xfe\x00garbage"})})
    assert out.kind == INVALID_CONNECTION and "Secret ns/s key 'ca.crt' is not valid PEM" in out.message
    assert "garbage" not in out.message


def test_string_data_and_fingerprint_changes_with_the_value():
    a = resolve(conn(**BASIC), {"s": secret({}, string_data={"username": "op", "password": "one"})})
    b = resolve(conn(**BASIC), {"s": secret({}, string_data={"username": "op", "password": "two"})})
    assert a.kwargs["basic_auth"] == ("op", "one") and a.fingerprint != b.fingerprint


def test_a_reader_error_is_reported_not_raised_and_says_nothing_of_existence():
    from rollup_operator.kube.client import KubeError

    def failing(error):
        async def get(ns, name):
            raise error
        return asyncio.run(credentials.resolve(conn(**BASIC), get))

    out = failing(KubeError(403, 'secrets "s" is forbidden: User "system:serviceaccount:x:y" cannot get resource "secrets"'))
    assert out == Failure(SECRET_UNREADABLE, "the operator cannot read Secret ns/s: the Kubernetes API answered HTTP 403; "
                                             "check that the operator may get Secrets in this namespace")
    out = failing(ConnectionRefusedError("connect to 10.0.0.1:6443 refused"))
    assert out.kind == SECRET_UNREADABLE and out.message == (
        "the operator cannot read Secret ns/s: the request to the Kubernetes API failed (ConnectionRefusedError); retried on the next sync")


def test_insecure_transport_warning():
    assert credentials.insecure_transport_warning(conn("http://es:9200", **BASIC)).startswith(
        "ElasticsearchConnection ns/c sends a username and password over plain HTTP to http://es:9200")
    assert "an API key" in credentials.insecure_transport_warning(conn("http://es:9200", **APIKEY))
    assert credentials.insecure_transport_warning(conn("https://es:9200", **BASIC)) is None
    assert credentials.insecure_transport_warning(conn("http://es:9200")) is None  # nothing to leak
    assert credentials.insecure_transport_warning(None) is None
    name = credentials.insecure_event_name("c", "0123456789ab", 3)
    assert name == "c.insecure-transport.01234567-g3"
