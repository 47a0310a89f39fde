"""What the job layer calls on a server's rollup API, whatever the engine (elasticsearch/rollup_api.py,
opensearch/rollup_api.py). Both speak the Elasticsearch job-config shape and the outcomes of
observations.py; each hides its engine's differences (OpenSearch: the stop wait, the state model).
``build`` makes the one for an engine; docs/engines.md has the table of differences."""

from __future__ import annotations

from typing import Any, Protocol

from elasticsearch import AsyncElasticsearch

from rollup_operator.engine.elasticsearch.rollup_api import Gateway
from rollup_operator.engine.opensearch.rollup_api import OpenSearchGateway
from rollup_operator.job.observations import FORBIDDEN, NOT_ELASTICSEARCH, WRONG_ENGINE, Failure, JobObserved, Outcome
from rollup_operator.job.connection_spec import ENGINES

AUTO, ELASTICSEARCH, OPENSEARCH = ENGINES


class RollupDialect(Protocol):
    engine: str
    deprecation_warning: str | None

    async def info(self) -> dict[str, Any] | Failure: ...

    async def list_jobs(self) -> dict[str, JobObserved | Failure] | Failure: ...

    async def stop(self, job_id: str, *, wait: bool, timeout: str, timeout_s: float, request_timeout: float) -> Outcome: ...

    async def start(self, job_id: str) -> Outcome: ...

    async def create(self, job_id: str, config: dict[str, Any]) -> Outcome: ...

    async def delete(self, job_id: str) -> Outcome: ...

    async def update(self, job_id: str, config: dict[str, Any], seen: JobObserved) -> Outcome: ...


def engine_of(info: dict[str, Any]) -> str:
    """The engine a ``GET /`` answer names (``version.distribution: opensearch``), else Elasticsearch."""
    version = info.get("version") if isinstance(info, dict) else None
    return OPENSEARCH if isinstance(version, dict) and version.get("distribution") == OPENSEARCH else ELASTICSEARCH


def build(client: AsyncElasticsearch, engine: str) -> RollupDialect:
    """The dialect for ``engine`` on ``client`` (auto: Elasticsearch until ``GET /`` says otherwise)."""
    return OpenSearchGateway(client) if engine == OPENSEARCH else Gateway(client)


async def identify(client: AsyncElasticsearch, first: RollupDialect, engine: str) -> tuple[RollupDialect, dict[str, Any] | Failure]:
    """``GET /`` through ``first`` (the dialect of ``engine``; on auto, of the engine seen last, else
    Elasticsearch). On auto, a server that answers as no Elasticsearch does is asked again as OpenSearch,
    and kept as OpenSearch if its answer names that distribution (or is an OpenSearch 403: a user
    without cluster monitor); one whose answer names another engine than ``first`` gets that one."""
    info = await first.info()
    if engine != AUTO:
        return first, info
    if isinstance(info, dict) and engine_of(info) != first.engine:  # it was OpenSearch before this rebuild
        other = build(client, engine_of(info))
        return other, await other.info()
    if first.engine != ELASTICSEARCH or not (isinstance(info, Failure) and info.kind == NOT_ELASTICSEARCH):
        return first, info
    other = build(client, OPENSEARCH)
    seen = await other.info()
    if isinstance(seen, dict) and engine_of(seen) == OPENSEARCH or isinstance(seen, Failure) and seen.kind == FORBIDDEN:
        return other, seen
    return first, info


def wrong_engine(info: dict[str, Any]) -> Failure | None:
    """An OpenSearch dialect on a server whose ``GET /`` is not OpenSearch's (spec.engine: opensearch)."""
    if engine_of(info) == OPENSEARCH:
        return None
    number = (info.get("version") or {}).get("number")
    return Failure(WRONG_ENGINE, f"spec.engine is opensearch but the server is not OpenSearch (GET / names no distribution "
                                 f"opensearch; version {number}): set spec.engine to auto or elasticsearch")
