"""The work queue's semantics: one pass per key at a time, adds coalesce, timers, a bounded immediate requeue."""

import asyncio

from rollup_operator.job.workqueue import AGAIN, DONE, Result, WorkQueue


async def test_one_pass_per_key_and_adds_during_a_pass_coalesce_into_one_more():
    runs, gate, events = [], asyncio.Event(), []

    async def process(key, superseded):
        runs.append(key)
        events.append(superseded)
        if len(runs) == 1:
            await gate.wait()
            assert superseded.is_set()  # the pass's context says a newer add came meanwhile
        else:
            assert not superseded.is_set()  # cleared for the pass it asked for
        return DONE

    q = WorkQueue(process)
    q.add("a")
    await asyncio.sleep(0)
    assert q.busy("a")
    assert not events[0].is_set()
    q.add("a"), q.add("a")
    assert events[0].is_set()
    gate.set()
    while q.busy("a"):
        await asyncio.sleep(0.01)
    assert runs == ["a", "a"]


async def test_add_after_fires_once_and_add_cancels_the_timer():
    runs = []

    async def process(key, _superseded):
        runs.append(key)
        return DONE

    q = WorkQueue(process)
    q.add_after("k", 0.05)
    assert q.pending("k")
    await asyncio.sleep(0.1)
    assert runs == ["k"] and not q.pending("k")
    q.add_after("k", 0.05)
    q.add("k")
    await asyncio.sleep(0.1)
    assert runs == ["k", "k"]
    q.add_after("k", 0)
    for _ in range(100):
        if len(runs) == 3:
            break
        await asyncio.sleep(0.01)
    assert runs == ["k", "k", "k"]


async def test_results_requeue_at_once_or_later():
    results = [AGAIN, Result(requeue_after=0.05), DONE]
    runs = []

    async def process(key, _superseded):
        runs.append(asyncio.get_running_loop().time())
        return results[len(runs) - 1]

    q = WorkQueue(process)
    q.add("x")
    await asyncio.sleep(0.15)
    assert len(runs) == 3 and runs[2] - runs[1] >= 0.04


async def test_immediate_requeues_are_bounded_then_spaced(monkeypatch):
    from rollup_operator.job import retry
    monkeypatch.setattr(retry, "IMMEDIATE_REQUEUES", 3)
    assert retry.requeue_backoff(1) == 0.005 and retry.requeue_backoff(30) == retry.REQUEUE_MAX_S
    # the first spaced requeue at 50 ms instead of 5, so that a loaded machine cannot run it before it is looked at
    monkeypatch.setattr(retry, "REQUEUE_FIRST_S", 0.05)
    runs = []

    async def process(key, _superseded):
        runs.append(asyncio.get_running_loop().time())
        return AGAIN if len(runs) < 7 else DONE

    q = WorkQueue(process)
    q.add("s")
    await asyncio.sleep(0.001)
    assert len(runs) == 4 and q.pending("s")  # 1 + 3 at once, then the 4th requeue waits 50 ms
    for _ in range(300):
        if len(runs) == 7 and not q.busy("s"):
            break
        await asyncio.sleep(0.01)
    assert len(runs) == 7 and not q.pending("s") and not q.busy("s")
    gaps = [b - a for a, b in zip(runs, runs[1:])]
    # at once, at once, at once; then 50, 100, 200 ms: the streak is kept across the spaced passes
    assert all(g < 0.025 for g in gaps[:3]) and gaps[3] >= 0.045 and gaps[4] >= 0.09 and gaps[5] >= 0.18, gaps


async def test_a_new_add_ends_the_requeue_streak(monkeypatch):
    from rollup_operator.job import retry
    monkeypatch.setattr(retry, "IMMEDIATE_REQUEUES", 2)
    monkeypatch.setattr(retry, "REQUEUE_FIRST_S", 0.5)  # a spaced requeue would be plain to see
    runs, q = [], None

    async def process(key, _superseded):
        runs.append(key)
        if len(runs) == 2:
            q.add(key)  # a watch event meanwhile: due at once, and the streak starts again
        return AGAIN if len(runs) < 5 else DONE

    q = WorkQueue(process)
    q.add("n")
    for _ in range(20):
        if len(runs) == 5 and not q.busy("n"):
            break
        await asyncio.sleep(0.01)
    # without the reset the 3rd requeue in a row would wait 0.5 s; with it all five run at once
    assert len(runs) == 5 and not q.pending("n") and not q.busy("n")
    await q.shutdown()


async def test_cancel_and_shutdown_end_passes_and_refuse_new_work():
    started = asyncio.Event()

    async def process(key, _superseded):
        started.set()
        await asyncio.sleep(10)
        return DONE

    q = WorkQueue(process)
    q.add("c")
    await started.wait()
    task = q.cancel("c")
    await asyncio.gather(task, return_exceptions=True)
    assert not q.busy("c")
    q.add("d")
    q.add_after("e", 5)
    await asyncio.sleep(0)
    await q.shutdown()
    assert not q.busy("d") and not q.pending("e")
    q.add("f"), q.add_after("f", 1)
    assert not q.busy("f") and not q.pending("f")
