"""kube.api_call: the one error mapping of the operator's Kubernetes calls (kube.py and lease_store.py)."""

import asyncio
import logging

import httpx2
import pytest
from lightkube import ApiError
from lightkube.models.meta_v1 import Status

from rollup_operator import metrics
from rollup_operator.kube.client import KubeError, api_call
from rollup_operator.ha.leader import LeaseConflict, LeaseError
from rollup_operator.ha.lease_store import KubeLeaseStore


def api_error(code: int, message: str) -> ApiError:
    return ApiError(status=Status(code=code, message=message))


async def answer(value):
    if isinstance(value, BaseException):
        raise value
    return value


def run(coro):
    return asyncio.run(coro)


def writes(kind: str) -> float:
    return metrics.K8S_WRITES.labels(kind=kind)._value.get()


def test_a_success_is_returned_and_counted_as_a_write_only_when_asked():
    before = writes("status")
    assert run(api_call("get x", answer({"a": 1}))) == {"a": 1}
    assert writes("status") == before
    assert run(api_call("apply x", answer("ok"), write="status")) == "ok"
    assert writes("status") == before + 1


def test_a_404_is_none_only_when_missing_is_ok():
    assert run(api_call("get x", answer(api_error(404, 'x "a" not found')), missing_ok=True)) is None
    with pytest.raises(KubeError) as e:
        run(api_call("get x", answer(api_error(404, 'x "a" not found'))))
    assert (e.value.status, e.value.message) == (404, 'x "a" not found')


def test_a_403_is_logged_as_rbac_naming_who(caplog):
    with caplog.at_level(logging.ERROR), pytest.raises(KubeError) as e:
        run(api_call("get secrets/s", answer(api_error(403, "forbidden!"))))
    assert e.value.status == 403 and "RBAC denies the operator: get secrets/s: forbidden!" in caplog.text
    with caplog.at_level(logging.ERROR), pytest.raises(KubeError):
        run(api_call("PUT leases/l", answer(api_error(403, "no")), denied="leader election"))
    assert "RBAC denies leader election: PUT leases/l: no" in caplog.text


def test_other_exceptions_are_not_mapped():
    with pytest.raises(httpx2.ConnectError):
        run(api_call("get x", answer(httpx2.ConnectError("refused"))))


class _Store(KubeLeaseStore):
    def __init__(self):  # no client: only _call is exercised
        self.name, self.namespace = "l", "ns"


def test_the_lease_store_maps_409_to_a_conflict_and_everything_else_to_lease_error(caplog):
    store = _Store()
    with pytest.raises(LeaseConflict, match=r"^PUT leases/l: 409: the object has been modified$"):
        run(store._call("PUT leases/l", answer(api_error(409, "the object has been modified"))))
    with caplog.at_level(logging.ERROR), pytest.raises(LeaseError, match=r"^PUT leases/l: 403: denied$") as e:
        run(store._call("PUT leases/l", answer(api_error(403, "denied"))))
    assert not isinstance(e.value, LeaseConflict) and "RBAC denies leader election: PUT leases/l: denied" in caplog.text
    with pytest.raises(LeaseError, match=r"^GET leases/l: ConnectError: refused$"):
        run(store._call("GET leases/l", answer(httpx2.ConnectError("refused"))))
    assert run(store._call("GET leases/l", answer(api_error(404, "gone")), missing_ok=True)) is None
