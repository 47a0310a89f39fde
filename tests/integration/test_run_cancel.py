"""``runtime.run_operator``: the one "run until cancelled" entry point (what a Lease holder wraps).

Run in process against the real API server: cancelling the task while a waiting stop is in flight
cancels the call, and nothing more is written (no status, no event), although the server goes on
to finish the stop. Setting the stop flag instead ends the run gracefully.
"""

import asyncio
import threading
import time

from rollup_operator.cli.main import _parser
from rollup_operator.app.manager import run_operator

from .support import condition


class InThread:
    def __init__(self, argv):
        self.args = _parser().parse_args(argv)
        self.loop = asyncio.new_event_loop()
        self.task = None
        self.stop = None
        self.error = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            self.stop = asyncio.Event()
            self.task = asyncio.current_task()
            await run_operator(self.args, self.stop)

        try:
            self.loop.run_until_complete(main())
        except BaseException as e:  # noqa: BLE001 - recorded for the test
            self.error = e

    def cancel(self):
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(20)

    def graceful(self):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)


def test_cancelling_the_run_cancels_calls_in_flight_and_writes_nothing_more(cluster, emulator, operator_kubeconfig):
    emu = emulator(auto_trigger=False)
    emu.add_job("slow", state="started", stop_delay=4.0, pages_per_run=None, page_duration=30)
    assert emu.trigger("slow")
    cluster.connection("es", emu.url, syncInterval="1s")
    cluster.job("slow", "stopped", stop={"timeout": "20s"})
    run = InThread(["run", "--kubeconfig", operator_kubeconfig, "-n", cluster.ns, "--http-port", "0", "--poll-interval", "0.2"])
    obj = cluster.wait("slow", lambda o: condition(o, "Ready").get("reason") == "Stopping", timeout=30, what="the stop in flight")
    time.sleep(0.5)
    rv, events = obj["metadata"]["resourceVersion"], len(cluster.events("slow"))
    run.cancel()
    assert not run.thread.is_alive()
    assert isinstance(run.error, asyncio.CancelledError), run.error
    assert emu.wait_for_state("slow", "stopped", timeout=10)  # the server finishes the stop on its own
    time.sleep(2.0)
    after = cluster.get("slow")
    assert after["metadata"]["resourceVersion"] == rv and condition(after, "Ready")["reason"] == "Stopping"
    assert len(cluster.events("slow")) == events


def test_setting_the_stop_flag_ends_the_run_gracefully(cluster, emulator, operator_kubeconfig):
    emu = emulator(auto_trigger=False)
    emu.add_job("j", state="started")
    cluster.connection("es", emu.url, syncInterval="1s")
    cluster.job("j", "stopped")
    run = InThread(["run", "--kubeconfig", operator_kubeconfig, "-n", cluster.ns, "--http-port", "0"])
    cluster.wait_ready("j", timeout=30)
    run.graceful()
    assert not run.thread.is_alive() and run.error is None, run.error
