"""A bound on the size of every Elasticsearch answer, read incrementally (issue 20 finding 2).

A connection's server is chosen by whoever may edit the connection. Without a bound, one server that
answers ``GET _rollup/job/_all`` with an endless 200 makes the operator buffer it whole, past the
Deployment's memory limit: an OOM kill and a restart loop for every tenant. Here the answer is read
chunk by chunk and the read stops (the connection is closed) as soon as it passes the connection's
``spec.maxResponseSize``; ``Content-Length`` above the bound is refused before the body is read.

The seam is the elasticsearch client's own: ``AsyncElasticsearch(node_class=...)`` takes an
elastic-transport node class, and aiohttp's ``ClientSession(response_class=...)`` takes the response
class whose ``read()`` the node awaits. The error reaches the gateway wrapped in the transport's
``ConnectionError`` (``errors=(ResponseTooLarge,)``), where it becomes the ``ResponseTooLarge`` reason.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from elastic_transport import AiohttpHttpNode

from rollup_operator.job.connection_spec import DEFAULT_MAX_RESPONSE_BYTES

_CHUNK = 64 * 1024


class ResponseTooLarge(Exception):
    def __init__(self, limit: int, seen: int | None = None, declared: int | None = None):
        self.limit = limit
        what = f"declares {declared} bytes" if declared is not None else f"passed {seen} bytes"
        super().__init__(f"the answer {what}, more than spec.maxResponseSize ({limit} bytes)")


class _BoundedResponse(aiohttp.ClientResponse):
    max_bytes = DEFAULT_MAX_RESPONSE_BYTES

    async def read(self) -> bytes:
        if self._body is None:
            declared = self.content_length
            if declared is not None and declared > self.max_bytes:
                self.close()
                raise ResponseTooLarge(self.max_bytes, declared=declared)
            buf = bytearray()
            try:
                async for chunk in self.content.iter_chunked(_CHUNK):
                    buf += chunk
                    if len(buf) > self.max_bytes:
                        raise ResponseTooLarge(self.max_bytes, seen=len(buf))
            except BaseException:
                self.close()
                raise
            self._body = bytes(buf)
        return await super().read()


class BoundedAiohttpNode(AiohttpHttpNode):
    """elastic-transport's aiohttp node with :class:`_BoundedResponse` as the session's response class."""

    response_class: type[aiohttp.ClientResponse] = _BoundedResponse

    def _create_aiohttp_session(self) -> None:
        super()._create_aiohttp_session()
        # The same session elastic-transport builds, with our response class (aiohttp reads it per request).
        self.session._response_class = self.response_class  # type: ignore[union-attr]


def node_class(max_bytes: int) -> type[AiohttpHttpNode]:
    """A node class whose answers are bounded to ``max_bytes``."""
    response = type("BoundedResponse", (_BoundedResponse,), {"max_bytes": max_bytes})
    return type("BoundedNode", (BoundedAiohttpNode,), {"response_class": response})


def too_large(exc: BaseException) -> ResponseTooLarge | None:
    """The ResponseTooLarge inside a transport error, if that is what it is."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen or e is None:
            continue
        seen.add(id(e))
        if isinstance(e, ResponseTooLarge):
            return e
        todo.extend(getattr(e, "errors", ()) or ())
        todo.append(e.__cause__)
        todo.append(e.__context__)
    return None


