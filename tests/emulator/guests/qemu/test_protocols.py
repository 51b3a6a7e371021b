"""QMP and guest-agent clients against fake QEMU endpoints on unix sockets."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.guests.qemu import qga, qmp


def test_qmp_result_parsing() -> None:
    assert qmp.result_of({"return": {}, "id": 3}, 3) == (True, {})
    assert qmp.result_of({"return": {}, "id": 2}, 3) == (False, None)
    assert qmp.result_of({"event": "POWERDOWN"}, 3) == (False, None)
    with pytest.raises(qmp.QmpError, match="CommandNotFound"):
        qmp.result_of({"error": {"class": "CommandNotFound", "desc": "nope"}, "id": 1}, 1)


async def _fake_qmp(path: str, seen: list[str]) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'{"QMP": {"version": {}, "capabilities": []}}\n')
        while line := await reader.readline():
            req = json.loads(line)
            seen.append(req["execute"])
            if req["execute"] == "system_powerdown":
                writer.write(b'{"event": "POWERDOWN", "timestamp": {}}\n')
            if req["execute"] == "bogus":
                writer.write(json.dumps({"error": {"class": "CommandNotFound", "desc": "bogus"},
                                         "id": req["id"]}).encode() + b"\n")
            elif req["execute"] == "quit":
                writer.close()
                return
            else:
                writer.write(json.dumps({"return": {}, "id": req["id"]}).encode() + b"\n")
            await writer.drain()

    return await asyncio.start_unix_server(handle, path)


def test_qmp_negotiates_skips_events_and_reports_errors(tmp_path: Path) -> None:
    path = str(tmp_path / "qmp.sock")
    seen: list[str] = []

    async def scenario() -> None:
        server = await _fake_qmp(path, seen)
        try:
            async with qmp.QmpClient(path) as client:
                assert await client.execute("system_powerdown") == {}
                assert client.events and client.events[0]["event"] == "POWERDOWN"
                with pytest.raises(qmp.QmpError, match="CommandNotFound"):
                    await client.execute("bogus")
            assert await qmp.command(path, "quit") == {}  # QEMU may hang up instead of answering quit
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())
    assert seen == ["qmp_capabilities", "system_powerdown", "bogus", "qmp_capabilities", "quit"]


def test_exec_status_parsing() -> None:
    assert qga.parse_exec_status({"exited": False}) is None
    res = qga.parse_exec_status({"exited": True, "exitcode": 3, "out-data": base64.b64encode(b"hi\n").decode(),
                                 "err-data": base64.b64encode(b"oops").decode()})
    assert res is not None and (res.exit_code, res.stdout, res.stderr) == (3, "hi\n", "oops")
    killed = qga.parse_exec_status({"exited": True, "signal": 9})
    assert killed is not None and killed.exit_code == 137 and killed.stdout == ""


@pytest.fixture
def fake_agent(tmp_path: Path) -> Iterator[tuple[str, list[dict[str, object]]]]:
    """A guest agent that leaves a stale answer in the pipe and needs two status polls per exec."""
    path = str(tmp_path / "qga.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    seen: list[dict[str, object]] = []
    polls = {"n": 0}

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b'{"return": {"stale": true}}\n')  # left over from an earlier client
                buf = b""
                while True:
                    data = conn.recv(4096)
                    if not data:
                        break
                    buf += data.replace(b"\xff", b"")
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        req = json.loads(line)
                        seen.append(req)
                        cmd, args = req["execute"], req.get("arguments", {})
                        if cmd == "guest-sync-delimited":
                            out = b"\xff" + json.dumps({"return": args["id"]}).encode()
                        elif cmd == "guest-exec":
                            out = json.dumps({"return": {"pid": 42}}).encode()
                        elif cmd == "guest-exec-status":
                            polls["n"] += 1
                            ret: dict[str, object] = {"exited": polls["n"] >= 2}
                            if ret["exited"]:
                                ret.update(exitcode=0, **{"out-data": base64.b64encode(b"hi\nroot\n").decode()})
                            out = json.dumps({"return": ret}).encode()
                        elif cmd == "guest-ping":
                            out = b'{"return": {}}'
                        else:
                            out = json.dumps({"error": {"class": "CommandNotFound", "desc": cmd}}).encode()
                        conn.sendall(out + b"\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield path, seen
    finally:
        srv.close()
        t.join(timeout=2)


def test_agent_syncs_past_stale_output_then_execs(fake_agent: tuple[str, list[dict[str, object]]]) -> None:
    path, seen = fake_agent
    with qga.QgaClient(path, timeout=3) as agent:
        agent.ping()
        result = agent.exec("echo hi; id -un", timeout=10, poll=0.01)
        with pytest.raises(qga.QgaError, match="CommandNotFound"):
            agent.call("guest-bogus")
    assert (result.exit_code, result.stdout) == (0, "hi\nroot\n")
    exec_req = next(r for r in seen if r["execute"] == "guest-exec")
    assert exec_req["arguments"] == {"path": "/bin/bash", "arg": ["-c", "echo hi; id -un"], "capture-output": True}
    assert [r["execute"] for r in seen][:2] == ["guest-sync-delimited", "guest-ping"]


def test_ping_is_false_when_nothing_answers(tmp_path: Path) -> None:
    assert qga.ping(str(tmp_path / "absent.sock"), timeout=0.5) is False
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # QEMU's chardev with no agent inside
    silent.bind(str(tmp_path / "silent.sock"))
    silent.listen(1)
    try:
        assert qga.ping(str(tmp_path / "silent.sock"), timeout=0.5) is False
    finally:
        silent.close()
