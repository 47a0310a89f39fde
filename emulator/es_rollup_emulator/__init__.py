"""A faithful, stateful Elasticsearch rollup emulator for tests and benchmarks.

Public API::

    from es_rollup_emulator import ElasticsearchEmulator, EmulatorThread, EmulatorPool

    async with ElasticsearchEmulator(version="8.17.0") as emu:   # async tests
        ...
    with EmulatorThread(version="9.1.0") as emu:                 # sync tests, benchmarks
        ...
    with EmulatorPool(10, seed_jobs=100) as pool:                 # many endpoints, one loop thread
        ...

Standalone: ``python -m es_rollup_emulator --port 9200`` (see ``README.md`` beside this file).
"""

from .emulator import DEFAULT_JOB_CONFIG, ElasticsearchEmulator
from .errors import ESError
from .server import RequestRecord
from .state import STAT_FIELDS, Timing
from .threaded import EmulatorPool, EmulatorThread, LoopThread
from .versions import DEPRECATION_MESSAGE, VersionProfile

__all__ = [
    "DEFAULT_JOB_CONFIG", "DEPRECATION_MESSAGE", "ESError", "ElasticsearchEmulator", "EmulatorPool",
    "EmulatorThread", "LoopThread", "RequestRecord", "STAT_FIELDS", "Timing", "VersionProfile",
]
