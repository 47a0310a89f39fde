"""The work queue's semantics: one pass per key at a time, adds coalesce, timers, rate limiting."""

import asyncio

from rollup_operator.job.workqueue import AGAIN, DONE, Result, WorkQueue


async def test_one_pass_per_key_and_adds_during_a_pass_coalesce_into_one_more():
    runs, gate = [], asyncio.Event()

    async def process(key):
        runs.append(key)
        if len(runs) == 1:
            await gate.wait()
        return DONE

    q = WorkQueue(process)
    q.add("a")
    await asyncio.sleep(0)
    assert q.busy("a")
    q.add("a"), q.add("a")
    assert q.is_superseded("a") and q.superseded("a").is_set()
    gate.set()
    while q.busy("a"):
        await asyncio.sleep(0.01)
    assert runs == ["a", "a"]
    assert not q.superseded("a").is_set()  # outside a pass: a fresh event


async def test_add_after_fires_once_and_add_cancels_the_timer():
    runs = []

    async def process(key):
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
    await asyncio.sleep(0.01)
    assert runs == ["k", "k", "k"]


async def test_results_requeue_at_once_or_later():
    results = [AGAIN, Result(requeue_after=0.05), DONE]
    runs = []

    async def process(key):
        runs.append(asyncio.get_running_loop().time())
        return results[len(runs) - 1]

    q = WorkQueue(process)
    q.add("x")
    await asyncio.sleep(0.15)
    assert len(runs) == 3 and runs[2] - runs[1] >= 0.04


async def test_rate_limited_adds_grow_until_forget():
    async def process(key):
        return DONE

    q = WorkQueue(process, rate_limit=lambda n: 0.01 * 2 ** n)
    assert q.add_rate_limited("r") == 0.01
    assert q.add_rate_limited("r") == 0.02
    assert q.num_requeues("r") == 2
    q.forget("r")
    assert q.num_requeues("r") == 0
    await q.shutdown()
    assert not q.pending("r")


async def test_cancel_and_shutdown_end_passes_and_refuse_new_work():
    started = asyncio.Event()

    async def process(key):
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
