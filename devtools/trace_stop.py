"""Trace the stop path through the runtime package's modules (issue 23's measure).

``python -m devtools.trace_stop`` runs the controller in process (the Elasticsearch emulator on a thread,
the in-memory Kubernetes client of tests/support/fake_kube.py), converges a RollupJob ``started``,
then edits it to ``desiredState: stopped`` and records, with ``sys.setprofile``, which module of
``rollup_operator`` is executing at every call and return:

* leg A: from the watch event (``handlers.job_event``) through the job's pass to the ``_stop``
  request on the wire and back, until its outcome is folded into the job's progress;
* leg B: the status writer's task for the job, up to the write of the ``Stopping`` status.

Consecutive steps in one module are collapsed. Printed per leg: the module sequence, the number of
distinct modules, and the hops into a module already left (a return to a caller counts as one).
Then the call chain at each landmark (the watch event into the store, the job into the queue, the
status queued, the stop request, the status write): the runtime modules with a frame on the stack
there, outermost first, i.e. the layers the request passes through, without the helpers (spec
parsing, decide, status building, progress folding, answer checks) called and returned from.
``--functions`` prints each step's function too. Only frames of the traced tasks are counted, so other tasks (the connection sync, the emulator) do
not pollute the trace.
"""

from __future__ import annotations

import asyncio
import copy
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "operator" / "rollup_operator"


def module_of(filename: str) -> str | None:
    try:
        rel = Path(filename).resolve().relative_to(PKG)
    except ValueError:
        return None
    return ".".join(rel.with_suffix("").parts)


class Tracer:
    def __init__(self) -> None:
        self.legs: dict[str, list[str]] = {"A": [], "B": []}
        self.active = False
        self.stop_sent = False
        self.folded = False
        self.where: dict[str, list[str]] = {}  # the function of each step (--functions)
        self.stopping_written = False
        #: The call chain (the runtime modules with a frame on the stack, outermost first) at each
        #: landmark: how deep the request goes, apart from the helpers called and returned from.
        self.chains: dict[str, list[str]] = {}
        self.spawned_from: list[str] = []

    def leg(self) -> str | None:
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return None
        name = task.get_name() if task else ""
        if name.startswith("reconcile ") or name == "trace-event":
            return "A"
        coro = task.get_coro() if task else None
        code = getattr(coro, "cr_code", None)
        if name.startswith("Task-") and code is not None and module_of(code.co_filename) in ("job.actions", "engine.shared_reads"):
            return "A"  # a pass's own sub-task: an interruptible action, a read it awaits
        if name.startswith("status RollupJob"):
            return "B"
        return None

    def __call__(self, frame, event, arg) -> None:
        if not self.active or event not in ("call", "return"):
            return
        leg = self.leg()
        if leg is None or (leg == "B" and self.stopping_written):
            return
        if leg == "B" and event == "call" and frame.f_code.co_name == "_apply" and module_of(frame.f_code.co_filename) == "kube.status_writer":
            self.chains.setdefault("status write", chain(frame))
        f = frame if event == "call" else frame.f_back
        mod = module_of(f.f_code.co_filename) if f is not None else None
        if mod is None:
            return
        if leg == "A" and self.folded:
            return
        if event == "call" and mod == "engine.elasticsearch.rollup_api" and frame.f_code.co_name == "stop":
            self.stop_sent = True
            # the interruptible action runs in a task of its own: its chain goes on from where the pass spawned it
            self.chains.setdefault("stop request", self.spawned_from + chain(frame))
        if event == "call" and mod == "job.reconcile" and frame.f_code.co_name == "interruptible" and not self.spawned_from:
            self.spawned_from = chain(frame)
        if event == "call" and mod == "job.store" and frame.f_code.co_name == "put_job":
            self.chains.setdefault("watch event into the store", chain(frame))
        if event == "call" and mod == "job.workqueue" and frame.f_code.co_name == "add":
            self.chains.setdefault("job into the queue", chain(frame))
        if event == "call" and mod == "kube.status_writer" and frame.f_code.co_name == "publish":
            self.chains.setdefault("status queued", chain(frame))
        if event == "call" and self.stop_sent and mod == "job.progress" and frame.f_code.co_name == "advance":
            self.folded = True  # the stop's outcome is back in the pass: leg A ends here
        seq = self.legs[leg]
        if not seq or seq[-1] != mod:
            seq.append(mod)
            self.where.setdefault(leg, []).append(f"{mod}:{f.f_code.co_name}")


def chain(frame) -> list[str]:
    mods: list[str] = []
    f = frame
    while f is not None:
        m = module_of(f.f_code.co_filename)
        if m is not None and (not mods or mods[-1] != m):
            mods.append(m)
        f = f.f_back
    return mods[::-1]


def report(name: str, seq: list[str]) -> dict:
    seen: set[str] = set()
    back = 0
    prev = None
    for m in seq:
        if prev is not None and m in seen:
            back += 1
        seen.add(m)
        prev = m
    print(f"leg {name}: {len(seq)} steps, {len(seen)} modules, {back} hops into a module already left")
    print("   " + " -> ".join(seq))
    return {"steps": len(seq), "modules": len(seen), "back": back, "distinct": sorted(seen)}


async def main() -> int:
    from es_rollup_emulator import EmulatorThread
    from rollup_operator.app import handlers
    from rollup_operator.app.controller import Controller
    from tests.support.fake_kube import FakeKube, World, conn_body

    with EmulatorThread(version="8.17.0", auto_trigger=False, page_duration=0.05) as emu:
        kube = FakeKube()
        ctl = Controller(kube, poll_interval=0.1, coalesce_window=0.01)
        body = conn_body(emu.url)
        body["spec"]["syncInterval"] = "1h"  # no sync during the trace
        ctl.on_connection_event("ADDED", body)
        world = World(emu, kube, ctl)
        emu.add_job("traced", state="started")
        world.put("traced", "started")
        await world.until(lambda: kube.ready("traced") == "Started")
        await asyncio.sleep(0.3)
        t = Tracer()
        real_apply = kube.apply_status

        async def apply_status(kind, ns, name, status):
            out = await real_apply(kind, ns, name, status)
            if name == "traced" and any(c.get("reason") == "Stopping" for c in status.get("conditions", [])):
                t.stopping_written = True
            return out
        kube.apply_status = apply_status
        world.rv += 1
        edited = copy.deepcopy(kube.bodies[("ns", "traced")])
        edited["metadata"].update(generation=2, resourceVersion=str(world.rv))
        edited["spec"]["desiredState"] = "stopped"
        kube.bodies[("ns", "traced")] = edited
        sys.setprofile(t)
        t.active = True
        registry = handlers.build_registry(ctl)
        handler = next(h.fn for h in registry._watching.get_all_handlers() if h.id.endswith(".job_event"))
        await asyncio.get_running_loop().create_task(handler(event={"type": "MODIFIED", "object": edited}), name="trace-event")
        await world.until(lambda: kube.ready("traced") == "Stopped", timeout=20)
        print("stop seen:", t.stop_sent)
        t.active = False
        sys.setprofile(None)
        await ctl.close()
    if "--functions" in sys.argv:
        for leg, steps in t.where.items():
            print(f"leg {leg} by function:\n   " + " -> ".join(steps))
    a = report("A (watch event -> _stop on the wire and back)", t.legs["A"])
    b = report("B (status write of Stopping)", t.legs["B"])
    both = set(a["distinct"]) | set(b["distinct"])
    print(f"together: {len(both)} modules, {a['back'] + b['back']} hops into a module already left")
    on_chains: set[str] = set()
    for what, mods in t.chains.items():
        on_chains |= set(mods)
        print(f"call chain at {what}: " + " -> ".join(mods))
    print("(the Kubernetes client is tests/support/fake_kube.py here: a real run adds kube.client and kube.transport below the status write)")
    print(f"call chains: {len(on_chains)} modules the request goes through (helpers called and returned from not counted)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
