"""The live-update stream: server-sent events for the owner's open pages, from Redis pub/sub.

A separate asyncio process (`dispatcher live`), because a stream stays open as long as the
page: under gunicorn's sync workers fifty open pages would hold fifty threads of eight. Here
each stream is a coroutine and a queue; one Redis subscription feeds them all, so nothing is
asked of the database or of Redis per client.

    GET /events?token=...   text/event-stream of the token's owner's changes
    GET /health             200 "ok" and how many streams are open

The token (web/live.py makes it for the logged-in owner) is signed with the app's secret key
and expires; the page's origin is allowed by CORS, as the stream is on its own port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from redis import asyncio as aioredis

from dispatcher.live.publish import PATTERN

log = logging.getLogger(__name__)

SALT = "dispatcher.live"
#: a stream token is good for this long (the page is reloaded or reopened by then)
TOKEN_MAX_AGE = 12 * 3600
#: a comment line this often keeps proxies and the browser from closing an idle stream
HEARTBEAT_SECONDS = 15.0
#: messages a slow client may fall behind by before its stream is closed (it reconnects)
QUEUE_SIZE = 256
#: how long the browser waits before reconnecting after a drop
RETRY_MS = 2000


def make_token(secret_key: str, owner_id: int) -> str:
    return URLSafeTimedSerializer(secret_key, salt=SALT).dumps({"owner": owner_id})


def read_token(secret_key: str, token: str, max_age: int = TOKEN_MAX_AGE) -> int | None:
    """The owner id in a valid, unexpired token; None otherwise."""
    try:
        data = URLSafeTimedSerializer(secret_key, salt=SALT).loads(token, max_age=max_age)
    except BadSignature:
        return None
    owner = data.get("owner") if isinstance(data, dict) else None
    return owner if isinstance(owner, int) else None


@dataclass
class Hub:
    """Open streams by owner; one Redis pattern subscription fans out to them."""

    redis_url: str
    streams: dict[int, set[asyncio.Queue]] = field(default_factory=lambda: defaultdict(set))
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def open(self, owner_id: int) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self.streams[owner_id].add(queue)
        return queue

    def close(self, owner_id: int, queue: asyncio.Queue) -> None:
        self.streams[owner_id].discard(queue)
        if not self.streams[owner_id]:
            del self.streams[owner_id]

    @property
    def count(self) -> int:
        return sum(len(queues) for queues in self.streams.values())

    async def run(self) -> None:
        """Subscribe and fan out until cancelled; reconnect after a Redis failure."""
        while True:
            try:
                client = aioredis.from_url(self.redis_url)
                async with client.pubsub() as pubsub:
                    await pubsub.psubscribe(PATTERN)
                    self.ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "pmessage":
                            self._deliver(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except (OSError, aioredis.RedisError) as exc:
                self.ready.clear()
                log.warning("live: Redis subscription lost (%s); retrying", exc)
                await asyncio.sleep(1)

    def _deliver(self, channel: bytes, data: bytes) -> None:
        try:
            owner_id = int(channel.rsplit(b":", 1)[1])
        except ValueError:
            return
        for queue in list(self.streams.get(owner_id, ())):
            try:
                queue.put_nowait(data)
            except asyncio.QueueFull:  # too slow: end its stream; the browser reconnects
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)
                self.close(owner_id, queue)


class StreamServer:
    """The HTTP side: a minimal HTTP/1.1 server for the two routes, on asyncio streams."""

    def __init__(self, *, redis_url: str, secret_key: str, allow_origin: str) -> None:
        self.hub = Hub(redis_url)
        self.secret_key = secret_key
        self.allow_origin = allow_origin.rstrip("/")
        self._handlers: set[asyncio.Task] = set()

    async def serve(
        self,
        host: str | None = None,
        port: int | None = None,
        started: asyncio.Event | None = None,
        *,
        sock: socket.socket | None = None,
    ) -> None:
        """Serve on `host`:`port`, or on a listening `sock` bound beforehand."""
        hub_task = asyncio.create_task(self.hub.run())
        where = {"sock": sock} if sock is not None else {"host": host, "port": port}
        server = await asyncio.start_server(self._handle, limit=16 * 1024, **where)
        self.port = server.sockets[0].getsockname()[1]
        await self.hub.ready.wait()
        if started is not None:
            started.set()
        try:
            async with server:
                await server.serve_forever()
        finally:
            # Open streams never end by themselves: end them, then the subscription.
            tasks = [*self._handlers, hub_task]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._handlers.add(task)
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            method, target = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[:2]
            url = urlsplit(target)
            if method not in ("GET", "HEAD"):
                await self._answer(writer, 405, "method not allowed")
            elif url.path == "/health":
                await self._answer(writer, 200, f"ok {self.hub.count} streams")
            elif url.path == "/events":
                token = (parse_qs(url.query).get("token") or [""])[0]
                owner_id = read_token(self.secret_key, token)
                if owner_id is None:
                    await self._answer(writer, 403, "invalid or expired token: reload the page")
                else:
                    await self._stream(writer, owner_id)
            else:
                await self._answer(writer, 404, "not found")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            await self._answer(writer, 400, "bad request")
        except (ConnectionError, OSError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                await writer.wait_closed()

    def _cors(self) -> str:
        return f"Access-Control-Allow-Origin: {self.allow_origin}\r\nVary: Origin\r\n"

    async def _answer(self, writer: asyncio.StreamWriter, status: int, text: str) -> None:
        body = (text + "\n").encode()
        reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found"}.get(
            status, "Method Not Allowed"
        )
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n{self._cors()}Connection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError, OSError):
            writer.write(head.encode() + body)
            await writer.drain()

    async def _stream(self, writer: asyncio.StreamWriter, owner_id: int) -> None:
        queue = self.hub.open(owner_id)
        try:
            writer.write(
                (
                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    f"Cache-Control: no-store\r\n{self._cors()}Connection: keep-alive\r\n\r\n"
                    f"retry: {RETRY_MS}\n: open\n\n"
                ).encode()
            )
            await writer.drain()
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    writer.write(b": keep-alive\n\n")
                else:
                    if data is None:
                        return
                    writer.write(_event(data))
                await writer.drain()
        finally:
            self.hub.close(owner_id, queue)


def _event(data: bytes) -> bytes:
    """One SSE message; the id lets a reconnecting browser say where it was."""
    try:
        event_id = json.loads(data).get("id")
    except ValueError:
        event_id = None
    head = f"id: {event_id}\n" if event_id is not None else ""
    return head.encode() + b"event: change\ndata: " + data.replace(b"\n", b" ") + b"\n\n"


def run(host: str, port: int, *, redis_url: str, secret_key: str, allow_origin: str) -> None:
    """Serve until interrupted (what `dispatcher live` runs)."""
    server = StreamServer(redis_url=redis_url, secret_key=secret_key, allow_origin=allow_origin)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve(host, port))
