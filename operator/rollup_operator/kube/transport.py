"""An httpx2 transport on aiohttp, for lightkube's async client (see kube.py).

lightkube builds requests (auth, URLs, bodies) with httpx2; by default httpx2 sends them through
httpcore and anyio's TLS stream, which costs the event loop about twice what aiohttp's C HTTP
parser and asyncio's native TLS do. A burst of status writes (a thousand jobs stopping at once)
runs on the same loop as the watch stream, so this transport keeps that cost down. aiohttp is
already a dependency (kopf watches with it).
"""

from __future__ import annotations

import ssl

import aiohttp
import httpx2
import yarl

from rollup_operator.kube.names import safe_path


_HOP = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection"})
_DECODED = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})


class AiohttpTransport(httpx2.AsyncBaseTransport):
    def __init__(self, ssl_context: ssl.SSLContext | None, *, limit: int = 32, timeout: float = 30.0):
        self._ssl = ssl_context
        self._limit = limit
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True, limit=self._limit)
            self._session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))
        return self._session

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        # The path goes out exactly as built (encoded=True: yarl would otherwise resolve '..'), and a
        # path with a dot segment or an encoded slash never leaves at all (kube_names.py).
        if not safe_path(request.url.raw_path.split(b"?", 1)[0].decode("ascii", "replace")):
            raise httpx2.UnsupportedProtocol(f"refused a Kubernetes request whose path is not plain segments: {request.url.path!r}",
                                             request=request)
        url = yarl.URL(str(request.url), encoded=True)
        body = await request.aread()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw if k.lower() not in _HOP]
        try:
            async with self._get_session().request(request.method, url, headers=headers, data=body or None,
                                                   timeout=self._timeout, allow_redirects=False) as resp:
                content = await resp.read()
                raw = [(k, v) for k, v in resp.raw_headers if k.lower() not in _DECODED]  # the body is read and decoded
                status = resp.status
        except aiohttp.ClientConnectionError as e:
            raise httpx2.ConnectError(str(e), request=request) from e
        except TimeoutError as e:
            raise httpx2.TimeoutException(str(e), request=request) from e
        return httpx2.Response(status, headers=raw, content=content, request=request)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
