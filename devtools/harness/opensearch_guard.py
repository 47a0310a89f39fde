"""Run one command and remove a directory when told to stop or when our parent dies.

    python3 opensearch_guard.py DIR -- COMMAND ARGS...

Started by devtools/harness/opensearch.py with PR_SET_PDEATHSIG (SIGTERM), so a SIGKILL of the
test run reaches it; it then sends SIGTERM to COMMAND (which also has PDEATHSIG set, in case
the guard itself is killed), waits up to 20 s, SIGKILLs it, removes DIR and exits. When COMMAND
exits by itself the guard exits with its code and leaves DIR (its log explains the exit; the
harness removes DIR). Standard library only: it runs with any python3.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: opensearch_guard.py DIR -- COMMAND ARGS...", file=sys.stderr)
        return 2
    directory, cmd = argv[0], argv[2:]
    parent = os.getppid()
    stopping = {"flag": False}

    def on_signal(_signum: int, _frame: object) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _die_with_parent()  # set again here: the parent may have set it; a fork of ours resets it
    if os.getppid() != parent:  # the parent died before prctl took effect
        stopping["flag"] = True
    child = subprocess.Popen(cmd, preexec_fn=_die_with_parent)
    while child.poll() is None and not stopping["flag"]:
        try:
            child.wait(0.5)
        except subprocess.TimeoutExpired:
            pass
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if stopping["flag"]:
        shutil.rmtree(directory, ignore_errors=True)
        return 0
    return child.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
