"""Tiny HTTP and SOCKS5 proxies on loopback for tests: they relay and count Bot API calls."""

from __future__ import annotations

import asyncio
import re
import struct
from collections import Counter
from contextlib import suppress
from types import TracebackType
from urllib.parse import urlsplit

# "/bot<token>/getMe" → "getMe"; the token is never kept.
_METHOD_RE = re.compile(rb"^/(?:file/)?bot[^/]+/([A-Za-z]+)")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    with suppress(ConnectionError, OSError):
        writer.close()


class _Proxy:
    """A loopback server; subclasses answer one client connection."""

    scheme = ""

    def __init__(self, *, user: str = "", password: str = "") -> None:
        self.methods: Counter[str] = Counter()
        self.connections = 0
        self.port = 0
        self.user, self.password = user, password
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        """The proxy's address as `[telegram] proxy` takes it."""
        port = self.port
        auth = f"{self.user}:{self.password}@" if self.user else ""
        return f"{self.scheme}://{auth}127.0.0.1:{port}"

    async def __aenter__(self) -> _Proxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def pause(self) -> None:
        """Refuse connections (as a proxy that went down) until `resume`."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):  # and drop the connections in hand
            writer.transport.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def resume(self) -> None:
        """Accept connections again on the same port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self.serve(reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            with suppress(ConnectionError, OSError):
                writer.close()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def open(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to the Bot API (dropped with the client's connection on `pause`)."""
        reader, writer = await asyncio.open_connection(host, port)
        self._writers.add(writer)
        return reader, writer

    def count(self, path: bytes) -> None:
        if match := _METHOD_RE.match(path):
            self.methods[match.group(1).decode()] += 1


class HttpProxy(_Proxy):
    """Forwards absolute-URI requests (one per connection) and tunnels CONNECT."""

    scheme = "http"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head[:-4].split(b"\r\n")
        method, target, version = request_line.split(b" ")
        if method == b"CONNECT":
            host, _, port = target.decode().rpartition(":")
            up_reader, up_writer = await self.open(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            return
        url = urlsplit(target.decode())
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self.count(path.encode())
        length = 0
        headers = []
        for line in header_lines:
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value)
            if key in (b"connection", b"proxy-connection", b"proxy-authorization"):
                continue
            headers.append(line)
        body = await reader.readexactly(length) if length else b""
        up_reader, up_writer = await self.open(url.hostname or "", url.port or 80)
        up_writer.write(
            b"\r\n".join([b" ".join([method, path.encode(), version]), *headers])
            + b"\r\nConnection: close\r\n\r\n"
            + body
        )
        await up_writer.drain()
        await _pipe(up_reader, writer)  # the answer carries "Connection: close": one request


class Socks5Proxy(_Proxy):
    """SOCKS5 with username and password (RFC 1928, 1929), CONNECT only."""

    scheme = "socks5"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _version, count = await reader.readexactly(2)
        offered = await reader.readexactly(count)
        if 2 not in offered:
            writer.write(b"\x05\xff")
            return
        writer.write(b"\x05\x02")
        _auth_version, user_length = await reader.readexactly(2)
        user = await reader.readexactly(user_length)
        (password_length,) = await reader.readexactly(1)
        password = await reader.readexactly(password_length)
        if (user.decode(), password.decode()) != (self.user, self.password):
            writer.write(b"\x01\x01")
            return
        writer.write(b"\x01\x00")
        _version, _command, _reserved, kind = await reader.readexactly(4)
        if kind == 1:
            host = ".".join(str(b) for b in await reader.readexactly(4))
        else:  # 3: a name (socks5h)
            (length,) = await reader.readexactly(1)
            host = (await reader.readexactly(length)).decode()
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        up_reader, up_writer = await self.open(host, port)
        writer.write(b"\x05\x00\x00\x01" + bytes(4) + b"\x00\x00")
        await writer.drain()
        # Plain HTTP inside the tunnel: count each request line as it passes.
        await asyncio.gather(self._counting(reader, up_writer), _pipe(up_reader, writer))

    async def _counting(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError, asyncio.IncompleteReadError):
            while chunk := await reader.read(65536):
                for match in re.finditer(rb"(?:GET|POST) (/\S+) HTTP/1\.1\r\n", chunk):
                    self.count(match.group(1))
                writer.write(chunk)
                await writer.drain()
        with suppress(ConnectionError, OSError):
            writer.close()
