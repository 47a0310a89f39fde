"""Scenario 4c: status stays self-consistent when a spec change arrives while status writes are queued.

Deterministic companion of the flip storms in test_flips.py (which hit this race only now and
then under load): the operator's controller, in process, with a fake Kubernetes whose status
patches are held, so that a watch event carrying the not-yet-updated stored status arrives while
the operator's own writes are still queued. Each write is the whole status (server-side apply),
rebuilt against the operator's view of the stored status, so that view must not be rolled back by
such an event. Driven through the seams: the store (watch events), the reconciler's publish step
and the one status writer.
"""

import asyncio
import copy

from rollup_operator.app.controller import Controller
from rollup_operator.job.decide import decide
from rollup_operator.job.spec import job_spec_from_body
from rollup_operator.job.observations import JobObserved


class HeldKube:
    """Status writes wait for ``release``; each one is applied whole (server-side apply of a status
    whose fields all belong to the operator's field manager: the stored status becomes it)."""

    def __init__(self, status):
        self.status = status
        self.rv = 10
        self.release = asyncio.Event()
        self.status_workers = 16  # as Kube: status writes in flight at once
        self.component, self.instance = "rollup-operator", "test"  # the event recorder's source

    async def apply_status(self, kind, ns, name, status):
        await self.release.wait()
        self.status = copy.deepcopy(status)
        self.rv += 1
        return {"metadata": {"resourceVersion": str(self.rv)}, "status": self.status}

    async def create_event(self, ns, body):
        return body

    async def patch_event(self, ns, name, patch):
        return {"metadata": {"name": name}, **patch}


def body(generation, desired, status, rv):
    return {"metadata": {"namespace": "ns", "name": "j", "uid": "u", "generation": generation, "resourceVersion": str(rv)},
            "spec": {"connectionRef": {"name": "es"}, "desiredState": desired}, "status": status}


def publish(ctl, rt, state):
    spec = job_spec_from_body(body(rt.generation, rt.spec.desired, {}, 0))
    obs = JobObserved(state)
    ctl.reconciler.publish(rt, spec, decide(spec, obs, rt.progress), obs)


async def test_a_watch_event_does_not_roll_back_queued_status_writes(report):
    row = report("4c. a spec change arrives while the operator's status patches are queued (deterministic, in process)",
                 "the stored status ends equal to the operator's last computed status (no field from an older patch "
                 "left next to Ready=True of a newer one)")
    kube = HeldKube({})
    ctl = Controller(kube)
    ctl.closing = True  # no passes: the test drives the publish step itself
    # generation 1, desired stopped, job stopped: Ready (Stopped) is stored
    ctl.on_job_event("ADDED", body(1, "stopped", {}, 10))
    rt = ctl.store.jobs[("ns", "j")]
    kube.release.set()
    publish(ctl, rt, "stopped")
    await ctl.writer.drain()
    stored = kube.status
    assert stored["jobState"] == "stopped"
    # generation 2, desired started: the operator writes Starting, then Started - both held
    kube.release.clear()
    ctl.on_job_event("MODIFIED", body(2, "started", stored, kube.rv + 1))
    publish(ctl, rt, "stopped")   # Starting (jobState stopped)
    publish(ctl, rt, "started")   # Started (jobState started)
    # generation 3, desired stopped again; its watch event carries the stored status (still gen 1's)
    ctl.on_job_event("MODIFIED", body(3, "stopped", kube.status, kube.rv + 2))
    publish(ctl, rt, "stopped")   # someone stopped it meanwhile: Ready (Stopped), jobState stopped
    wanted = copy.deepcopy(rt.status)
    kube.release.set()
    await ctl.writer.drain()
    row.num(stored_jobState=kube.status.get("jobState"), wanted_jobState=wanted.get("jobState"),
            stored_ready=[c["reason"] for c in kube.status["conditions"] if c["type"] == "Ready"])
    assert kube.status == wanted, {k: (kube.status.get(k), wanted.get(k)) for k in set(kube.status) | set(wanted)
                                   if kube.status.get(k) != wanted.get(k)}
