"""priority_slots.PrioritySlots: lower priority first, FIFO within one, raise while waiting, cancellation."""

from __future__ import annotations

import asyncio

from rollup_operator.kube.priority_slots import PrioritySlots
from rollup_operator.kube.status_writer import priority


async def _run(slots: PrioritySlots, order: list[str], name: str, prio: int, hold: asyncio.Event | None = None) -> None:
    async with slots.waiter(prio):
        order.append(name)
        if hold is not None:
            await hold.wait()


async def _held(slots: PrioritySlots, order: list[str], name: str = "holder") -> tuple[asyncio.Task[None], asyncio.Event]:
    """A task holding the one slot until the returned event is set."""
    gate = asyncio.Event()
    task = asyncio.create_task(_run(slots, order, name, 0, gate))
    await asyncio.sleep(0)
    return task, gate


async def test_waiters_are_served_by_priority_then_in_arrival_order():
    slots = PrioritySlots(1)
    order: list[str] = []
    gate = asyncio.Event()
    first = asyncio.create_task(_run(slots, order, "holder", 1, gate))
    await asyncio.sleep(0)
    tasks = []
    for name, prio in [("a1", 1), ("b0", 0), ("c1", 1), ("d0", 0)]:
        tasks.append(asyncio.create_task(_run(slots, order, name, prio)))
        await asyncio.sleep(0)
    assert slots.waiting == 4
    gate.set()
    await asyncio.gather(first, *tasks)
    assert order == ["holder", "b0", "d0", "a1", "c1"]
    assert slots.waiting == 0


async def test_free_slots_are_taken_at_once_and_returned():
    slots = PrioritySlots(2)
    order: list[str] = []
    await asyncio.gather(*(_run(slots, order, str(i), i % 2) for i in range(5)))
    assert sorted(order) == ["0", "1", "2", "3", "4"]
    assert slots._free == 2 and slots.waiting == 0


async def test_a_waiter_raised_while_waiting_goes_before_the_others():
    slots = PrioritySlots(1)
    order: list[str] = []
    holder, gate = await _held(slots, order)
    early = asyncio.create_task(_run(slots, order, "early", 1))
    await asyncio.sleep(0)
    late = slots.waiter(1)

    async def use_late() -> None:
        async with late:
            order.append("late")

    t = asyncio.create_task(use_late())
    await asyncio.sleep(0)
    late.raise_to(0)
    late.raise_to(1)  # lowering it again is ignored
    assert slots.waiting == 2
    gate.set()
    await asyncio.gather(holder, early, t)
    assert order == ["holder", "late", "early"]


async def test_a_cancelled_waiter_gives_up_its_place_and_never_leaks_a_slot():
    slots = PrioritySlots(1)
    order: list[str] = []
    holder, gate = await _held(slots, order)
    gone = asyncio.create_task(_run(slots, order, "gone", 0))
    after = asyncio.create_task(_run(slots, order, "after", 1))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    assert slots.waiting == 1
    gate.set()
    await asyncio.gather(holder, after)
    assert order == ["holder", "after"]
    # Cancelled just as the slot was handed to it: the slot goes back, not lost.
    holder2, gate2 = await _held(slots, order, "holder2")
    unlucky = asyncio.create_task(_run(slots, order, "unlucky", 0))
    await asyncio.sleep(0)
    gate2.set()
    await asyncio.sleep(0)  # holder2 releases: the slot is handed to "unlucky"'s future
    unlucky.cancel()
    await asyncio.gather(holder2, unlucky, return_exceptions=True)
    assert slots._free == 1 and slots.waiting == 0


def test_priority_of_a_status():
    def cond(reconciling: str) -> dict:
        return {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Reconciling", "status": reconciling}]}

    assert priority(cond("True")) == 1  # Stopping, Starting...: intermediate
    assert priority(cond("False")) == 0  # Ready or Stalled: the end of a transition
    assert priority({}) == 0
