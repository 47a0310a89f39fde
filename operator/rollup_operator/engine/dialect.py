"""What the job layer calls on a server's rollup API, whatever the engine (gateway.py: Elasticsearch,
opensearch_gateway.py: OpenSearch). Both speak the Elasticsearch job-config shape and the outcomes of
observations.py; each hides its engine's differences (OpenSearch: the stop wait, the state model)."""

from __future__ import annotations

from typing import Protocol

from rollup_operator.job.observations import Failure, JobObserved, Outcome

ELASTICSEARCH, OPENSEARCH, AUTO = "elasticsearch", "opensearch", "auto"
ENGINES = (AUTO, ELASTICSEARCH, OPENSEARCH)


class RollupDialect(Protocol):
    engine: str
    deprecation_warning: str | None

    async def info(self) -> dict | Failure: ...

    async def list_jobs(self) -> dict[str, JobObserved | Failure] | Failure: ...

    async def stop(self, job_id: str, *, wait: bool, timeout: str, timeout_s: float, request_timeout: float) -> Outcome: ...

    async def start(self, job_id: str) -> Outcome: ...

    async def create(self, job_id: str, config: dict) -> Outcome: ...

    async def delete(self, job_id: str) -> Outcome: ...


def engine_of(info: dict) -> str:
    """The engine a ``GET /`` answer names (``version.distribution: opensearch``), else Elasticsearch."""
    version = info.get("version") if isinstance(info, dict) else None
    return OPENSEARCH if isinstance(version, dict) and version.get("distribution") == OPENSEARCH else ELASTICSEARCH
