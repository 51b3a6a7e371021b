"""QEMU guest agent client (blocking, unix socket): guest-ping, and guest-exec for Run Command.

The agent speaks QMP-style JSON over a virtio-serial port without a greeting. A connection may
find stale answers from an earlier client in the pipe, so every session starts with
``guest-sync-delimited``: the agent answers with a 0xFF byte then ``{"return": <id>}``, and
everything before it is discarded. Callers serialise sessions (the port has one reader).
"""

from __future__ import annotations

import base64
import json
import random
import socket
import time
from typing import Any

from emulator.guests.base import RunResult


class QgaError(RuntimeError):
    """The agent is not answering, or answered a command with an error."""


def parse_exec_status(ret: dict[str, Any]) -> RunResult | None:
    """guest-exec-status's answer as a RunResult, or None while the process still runs."""
    if not ret.get("exited"):
        return None
    out = base64.b64decode(ret.get("out-data", "") or "").decode(errors="replace")
    err = base64.b64decode(ret.get("err-data", "") or "").decode(errors="replace")
    code = ret.get("exitcode")
    if code is None:  # killed by a signal: report it the way a shell would
        code = 128 + int(ret.get("signal", 0) or 0)
    return RunResult(exit_code=int(code), stdout=out, stderr=err)


class QgaClient:
    """One session with the guest agent: ``with QgaClient(sock) as qga: qga.ping()``."""

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        self.path = path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = b""

    def __enter__(self) -> QgaClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError as exc:
            s.close()
            raise QgaError(f"cannot connect to the guest agent socket: {exc}") from None
        self._sock = s
        self._sync()

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _send(self, command: str, arguments: dict[str, Any] | None = None) -> None:
        assert self._sock is not None
        req: dict[str, Any] = {"execute": command}
        if arguments is not None:
            req["arguments"] = arguments
        try:
            self._sock.sendall(json.dumps(req).encode() + b"\n")
        except OSError as exc:
            raise QgaError(f"guest agent connection failed: {exc}") from None

    def _fill(self, deadline: float) -> None:
        assert self._sock is not None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise QgaError("the guest agent did not answer in time")
        self._sock.settimeout(remaining)
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError:
            raise QgaError("the guest agent did not answer in time") from None
        except OSError as exc:
            raise QgaError(f"guest agent connection failed: {exc}") from None
        if not chunk:
            raise QgaError("the guest agent connection closed")
        self._buf += chunk

    def _line(self, deadline: float) -> dict[str, Any]:
        while b"\n" not in self._buf:
            self._fill(deadline)
        line, self._buf = self._buf.split(b"\n", 1)
        line = line.strip().lstrip(b"\xff")
        if not line:
            return self._line(deadline)
        try:
            msg = json.loads(line)
        except ValueError:
            return {}  # garbage from a half-read earlier session: skip it
        return msg if isinstance(msg, dict) else {}

    def _sync(self) -> None:
        assert self._sock is not None
        tag = random.randint(1, 2**31 - 1)
        try:
            self._sock.sendall(b"\xff")  # resets the agent's parser after a client that died mid-command
        except OSError as exc:
            raise QgaError(f"guest agent connection failed: {exc}") from None
        self._send("guest-sync-delimited", {"id": tag})
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\xff" not in self._buf:
                self._buf = b""
                self._fill(deadline)
            self._buf = self._buf.split(b"\xff")[-1]
            msg = self._line(deadline)
            if msg.get("return") == tag:
                return

    def call(self, command: str, arguments: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        self._send(command, arguments)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self._line(deadline)
            if "error" in msg:
                err = msg["error"] or {}
                raise QgaError(f"{err.get('class', 'GenericError')}: {err.get('desc', '')}")
            if "return" in msg:
                return msg["return"]

    def ping(self) -> None:
        self.call("guest-ping")

    def exec(self, script: str, timeout: float, shell: str = "/bin/bash", poll: float = 0.2) -> RunResult:
        """Run ``shell -c script`` as root in the guest and wait for it (TimeoutError after ``timeout``)."""
        ret = self.call("guest-exec", {"path": shell, "arg": ["-c", script], "capture-output": True})
        pid = int(ret["pid"])
        deadline = time.monotonic() + timeout
        while True:
            result = parse_exec_status(self.call("guest-exec-status", {"pid": pid}))
            if result is not None:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"The script did not finish within {timeout:g} seconds.")
            time.sleep(poll)
            poll = min(poll * 1.5, 2.0)


def ping(path: str, timeout: float = 3.0) -> bool:
    """Does the guest agent answer?"""
    try:
        with QgaClient(path, timeout) as qga:
            qga.ping()
        return True
    except QgaError:
        return False
