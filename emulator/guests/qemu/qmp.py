"""A small QEMU Machine Protocol client (asyncio, unix socket): enough to power a VM off or quit it.

QMP greets with ``{"QMP": ...}``, wants ``qmp_capabilities`` before anything else, then answers
each command with ``{"return": ...}`` or ``{"error": {"class", "desc"}}``, interleaved with
asynchronous ``{"event": ...}`` messages. The runtime opens one short connection per action, so
an emulator restart simply connects again to the socket of a QEMU it adopts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
from typing import Any


class QmpError(RuntimeError):
    """QEMU answered a command with an error (``klass`` is QMP's error class)."""

    def __init__(self, klass: str, desc: str) -> None:
        super().__init__(f"{klass}: {desc}")
        self.klass = klass
        self.desc = desc


def parse_message(line: bytes) -> dict[str, Any]:
    """One QMP message (one JSON object per line)."""
    msg = json.loads(line)
    if not isinstance(msg, dict):
        raise ValueError(f"not a QMP message: {line[:200]!r}")
    return msg


def result_of(msg: dict[str, Any], tag: int | None = None) -> tuple[bool, Any]:
    """(is the answer to command ``tag``, its return value); raises QmpError for an error answer."""
    if "event" in msg or "QMP" in msg:
        return False, None
    if tag is not None and msg.get("id") != tag:
        return False, None
    if "error" in msg:
        err = msg["error"] or {}
        raise QmpError(str(err.get("class", "GenericError")), str(err.get("desc", "")))
    if "return" in msg:
        return True, msg["return"]
    return False, None


class QmpClient:
    """``async with QmpClient(path) as qmp: await qmp.execute("system_powerdown")``."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> QmpClient:
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_unix_connection(self.path, limit=16 * 1024 * 1024), self.timeout)
        greeting = await self._read()
        if "QMP" not in greeting:
            raise QmpError("ProtocolError", f"no QMP greeting: {greeting}")
        await self.execute("qmp_capabilities")
        return self

    async def _read(self) -> dict[str, Any]:
        assert self._reader is not None
        line = await asyncio.wait_for(self._reader.readline(), self.timeout)
        if not line:
            raise ConnectionError("QMP connection closed")
        return parse_message(line)

    async def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        assert self._writer is not None
        tag = next(self._ids)
        req: dict[str, Any] = {"execute": command, "id": tag}
        if arguments:
            req["arguments"] = arguments
        self._writer.write(json.dumps(req).encode() + b"\n")
        await self._writer.drain()
        while True:
            msg = await self._read()
            if "event" in msg:
                self.events.append(msg)
                continue
            done, value = result_of(msg, tag)
            if done:
                return value

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def __aenter__(self) -> QmpClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def command(path: str, name: str, arguments: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
    """Connect, run one command, disconnect. ``quit`` may close the socket before answering: that is success."""
    async with QmpClient(path, timeout) as qmp:
        try:
            return await qmp.execute(name, arguments)
        except ConnectionError:
            if name == "quit":
                return {}
            raise


def run(path: str, name: str, arguments: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
    """``command`` from synchronous code (the runtime's threads; a loop thread gets a helper thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(command(path, name, arguments, timeout))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, command(path, name, arguments, timeout)).result()
