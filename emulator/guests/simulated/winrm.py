"""The simulated Windows guest's WinRM listener: WS-Management SOAP over HTTP (5985) and HTTPS (5986).

Implements the Windows Remote Shell operations as pywinrm's ``Protocol`` sends them: Create
(shell), Command, Send (stdin), Receive (base64 stdout/stderr, CommandState Running/Done with
ExitCode; a Receive with nothing to report waits up to the client's OperationTimeout and then
answers the WSManFault 2150858793 that pywinrm retries on), Signal and Delete, with Basic and
NTLM (pyspnego as acceptor; HTTP message encryption as pywinrm's ``message_encryption='auto'``
does it) authentication. The HTTPS listener uses a self-signed certificate naming the computer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
import ipaddress
import logging
import os
import re
import ssl
import struct
import tempfile
import threading
import uuid
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from emulator.guests.simulated.session import StreamInput

if TYPE_CHECKING:
    from emulator.guests.simulated.runtime import Guest

log = logging.getLogger("emulator.guests.simulated")

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
}
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
A_CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
A_DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
A_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
STATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/"
TIMEOUT_CODE = 2150858793
NO_SHELL_CODE = 2150858843
MAX_WAIT = 60.0
ENC_BOUNDARY = b"--Encrypted Boundary"
ENC_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"


class _Stream:
    """A command's stdout or stderr: written by its worker thread, drained by Receive."""

    def __init__(self, notify: Any) -> None:
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._notify = notify

    def write(self, text: str) -> None:
        if not text:
            return
        with self._lock:
            self._buf.extend(text.encode("utf-8", errors="replace"))
        self._notify()

    def take(self) -> bytes:
        with self._lock:
            data = bytes(self._buf)
            self._buf.clear()
        return data


class WinRMCommand:
    def __init__(self, shell: WinRMShell, command_line: str, loop: asyncio.AbstractEventLoop) -> None:
        self.id = str(uuid.uuid4()).upper()
        self.shell = shell
        self.command_line = command_line
        self.loop = loop
        self.changed = asyncio.Event()
        self.cancel = threading.Event()
        self.stdin = StreamInput(self.cancel)
        self.out = _Stream(self.notify)
        self.err = _Stream(self.notify)
        self.done = False
        self.exit_code = 0

    def notify(self) -> None:
        self.loop.call_soon_threadsafe(self.changed.set)

    def finish(self, code: int) -> None:
        self.exit_code = code
        self.done = True
        self.notify()


class WinRMShell:
    def __init__(self, user: str) -> None:
        self.id = str(uuid.uuid4()).upper()
        self.user = user
        self.commands: dict[str, WinRMCommand] = {}


class _Fault(Exception):
    def __init__(self, status: int, subcode: str, code: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.subcode, self.code, self.reason = status, subcode, code, reason


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        '<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" '
        'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
        'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" '
        'xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">'
        f"<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _fault_body(fault: _Fault, machine: str) -> str:
    return (
        '<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode>'
        f"<s:Value>{fault.subcode}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)}</s:Text></s:Reason><s:Detail>'
        f'<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="{fault.code}" '
        f'Machine="{escape(machine)}"><f:Message>{escape(fault.reason)}</f:Message></f:WSManFault>'
        "</s:Detail></s:Fault>"
    )


def _timeout_seconds(text: str | None) -> float:
    m = re.fullmatch(r"PT(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?", (text or "").strip())
    if not m:
        return 20.0
    return float(m.group(1) or 0) * 60 + float(m.group(2) or 0)


def _user_of(name: str) -> str:
    if "\\" in name:
        return name.split("\\", 1)[1]
    if "@" in name:
        return name.split("@", 1)[0]
    return name


class _Conn:
    """Per-TCP-connection authentication state (NTLM authenticates the connection, not the request)."""

    def __init__(self) -> None:
        self.ntlm: Any = None
        self.user: str | None = None


class WinRMServer:
    def __init__(self, guest: Guest) -> None:
        self.guest = guest
        self.shells: dict[str, WinRMShell] = {}
        self.servers: list[asyncio.AbstractServer] = []
        self.writers: set[asyncio.StreamWriter] = set()
        self._password_cache: dict[str, str] = {}

    async def start(self, host: str, http_port: int, https_port: int | None) -> None:
        self.servers.append(await asyncio.start_server(self._conn, host, http_port, reuse_address=True))
        if https_port:
            ctx = self._ssl_context(host)
            self.servers.append(await asyncio.start_server(self._conn, host, https_port, ssl=ctx,
                                                           reuse_address=True))

    def _ssl_context(self, host: str) -> ssl.SSLContext:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        name = self.guest.computer_name()
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=365))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name),
                                                            x509.IPAddress(ipaddress.ip_address(host))]), False)
                .sign(key, hashes.SHA256()))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as d:
            cert_path, key_path = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
            with open(cert_path, "wb") as f:
                f.write(cert.public_bytes(serialization.Encoding.PEM))
            with open(key_path, "wb") as f:
                f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
            ctx.load_cert_chain(cert_path, key_path)
        return ctx

    async def close(self) -> None:
        for shell in list(self.shells.values()):
            for cmd in shell.commands.values():
                cmd.cancel.set()
        self.shells.clear()
        for server in self.servers:
            server.close()
        for w in list(self.writers):
            with contextlib.suppress(Exception):
                w.transport.abort()
        for server in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        self.servers = []

    # HTTP ------------------------------------------------------------------------------------
    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        state = _Conn()
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                parts = line.decode("latin-1").split()
                if len(parts) < 2:
                    break
                method, path = parts[0], parts[1]
                headers: dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                status, out_headers, out_body = await self._request(state, method, path, headers, body)
                head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}", "Server: Microsoft-HTTPAPI/2.0",
                        f"Content-Length: {len(out_body)}"]
                head += [f"{k}: {v}" for k, v in out_headers]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + out_body)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass
        finally:
            self.writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _request(self, state: _Conn, method: str, path: str, headers: dict[str, str],
                       body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        if path.split("?")[0].lower().rstrip("/") != "/wsman":
            return 404, [], b""
        if method != "POST":
            return 405, [("Allow", "POST")], b""
        user, reply = await self._authenticate(state, headers)
        if user is None:
            return 401, [("WWW-Authenticate", reply or "Negotiate"), *([] if reply else
                                                                        [("WWW-Authenticate", 'Basic realm="WSMAN"')])], b""
        encrypted = "multipart/encrypted" in headers.get("content-type", "")
        if encrypted:
            try:
                body = self._decrypt(state, body)
            except Exception as exc:
                log.info("simulated guest %s: WinRM message decryption failed: %s", self.guest.vm_id, exc)
                return 400, [], b""
        extra = [("WWW-Authenticate", reply)] if reply else []
        if not body:
            return 200, extra, b""
        status, payload = await self._soap(user, body)
        if encrypted:
            return status, [*extra, ("Content-Type", f'multipart/encrypted;protocol="{ENC_PROTOCOL}";' 'boundary="Encrypted Boundary"')], self._encrypt(state, payload)
        return status, [*extra, ("Content-Type", "application/soap+xml;charset=UTF-8")], payload

    async def _authenticate(self, state: _Conn, headers: dict[str, str]) -> tuple[str | None, str | None]:
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                name, _, password = base64.b64decode(token).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return None, None
            user = _user_of(name)
            digest = hashlib.sha256(f"{user.lower()}\0{password}".encode()).hexdigest()
            if self._password_cache.get(user.lower()) == digest:
                return self.guest.windows_user(user), None
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(self.guest.runtime.executor, self.guest.check_windows_password, user,
                                            password)
            self.guest.log(f"winrm: basic auth for {user} {'accepted' if ok else 'refused'}")
            if not ok:
                return None, None
            self._password_cache[user.lower()] = digest
            return self.guest.windows_user(user), None
        if scheme in ("negotiate", "ntlm"):
            return self._ntlm(state, scheme, token)
        if state.user is not None and state.ntlm is not None:
            return state.user, None  # an authenticated NTLM connection (encrypted requests carry no header)
        return None, None

    # NTLM -------------------------------------------------------------------------------------
    def _ntlm(self, state: _Conn, scheme: str, token: str) -> tuple[str | None, str | None]:
        from emulator.guests.simulated.ntlm import accept

        try:
            raw = base64.b64decode(token)
        except ValueError:
            return None, None
        if raw.startswith(b"NTLMSSP\x00\x01\x00\x00\x00") or state.ntlm is None:
            state.ntlm = accept(self.guest)
            state.user = None
        try:
            out = state.ntlm.step(raw)
        except Exception as exc:
            self.guest.log(f"winrm: NTLM logon refused ({exc})")
            state.ntlm = None
            return None, None
        reply = f"{scheme.capitalize()} {base64.b64encode(out).decode()}" if out else None
        if not state.ntlm.complete:
            return None, reply
        name = _user_of(state.ntlm.client_principal or "")
        user = self.guest.windows_user(name)
        if user is None:
            state.ntlm = None
            return None, None
        state.user = user
        self.guest.log(f"winrm: NTLM logon for {user} accepted")
        return user, reply

    def _decrypt(self, state: _Conn, body: bytes) -> bytes:
        if state.ntlm is None:
            raise ValueError("no security context")
        parts = [p for p in body.split(ENC_BOUNDARY + b"\r\n") if p]
        payload = parts[1]
        if payload.endswith(ENC_BOUNDARY + b"--\r\n"):
            payload = payload[: -len(ENC_BOUNDARY + b"--\r\n")]
        data = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"", 1)
        sig_len = struct.unpack("<i", data[:4])[0]
        signature, sealed = data[4:4 + sig_len], data[4 + sig_len:]
        return bytes(state.ntlm.unwrap(signature + sealed).data)

    def _encrypt(self, state: _Conn, payload: bytes) -> bytes:
        wrapped = state.ntlm.wrap(payload, encrypt=True).data
        signature, sealed = wrapped[:16], wrapped[16:]
        return (ENC_BOUNDARY + b"\r\n\tContent-Type: " + ENC_PROTOCOL.encode() + b"\r\n"
                + b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(payload)).encode()
                + b"\r\n" + ENC_BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
                + struct.pack("<i", len(signature)) + signature + sealed + ENC_BOUNDARY + b"--\r\n")

    # WS-Management ------------------------------------------------------------------------------
    async def _soap(self, user: str, body: bytes) -> tuple[int, bytes]:
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return 400, b""
        header = root.find("s:Header", NS)
        action = (header.findtext("a:Action", "", NS) if header is not None else "").strip()
        message_id = (header.findtext("a:MessageID", "", NS) if header is not None else "").strip()
        timeout = _timeout_seconds(header.findtext("w:OperationTimeout", None, NS) if header is not None else None)
        shell_id = None
        if header is not None:
            for sel in header.iterfind("w:SelectorSet/w:Selector", NS):
                if sel.get("Name") == "ShellId":
                    shell_id = (sel.text or "").strip()
        body_el = root.find("s:Body", NS)
        try:
            if action == A_CREATE:
                return 200, self._create(user, message_id)
            if action == A_DELETE:
                return 200, self._delete(self._shell(shell_id, user), message_id)
            if action == A_SHELL + "Command":
                return 200, self._command(self._shell(shell_id, user), body_el, message_id)
            if action == A_SHELL + "Receive":
                return 200, await self._receive(self._shell(shell_id, user), body_el, message_id, timeout)
            if action == A_SHELL + "Send":
                return 200, self._send(self._shell(shell_id, user), body_el, message_id)
            if action == A_SHELL + "Signal":
                return 200, self._signal(self._shell(shell_id, user), body_el, message_id)
            raise _Fault(500, "a:ActionNotSupported", 2150858892,
                         f"The WS-Management service cannot process the request. The action {action} is not "
                         "supported by the simulated guest.")
        except _Fault as fault:
            return fault.status, _envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", message_id,
                                           _fault_body(fault, self.guest.computer_name()))

    def _shell(self, shell_id: str | None, user: str) -> WinRMShell:
        shell = self.shells.get(shell_id or "")
        if shell is None or shell.user.lower() != user.lower():
            raise _Fault(500, "w:InvalidSelectors", NO_SHELL_CODE,
                         f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell "
                         "was not found on the server. Possible causes are: the specified ShellId is incorrect or the "
                         "shell no longer exists on the server. Provide the correct ShellId or create a new shell and "
                         "retry the operation.")
        return shell

    def _create(self, user: str, message_id: str) -> bytes:
        shell = WinRMShell(user)
        self.shells[shell.id] = shell
        address = f"http://{self.guest.address}:5985/wsman"
        body = (
            f"<x:ResourceCreated><a:Address>{address}</a:Address><a:ReferenceParameters>"
            f"<w:ResourceURI>{SHELL_URI}</w:ResourceURI><w:SelectorSet>"
            f'<w:Selector Name="ShellId">{shell.id}</w:Selector></w:SelectorSet></a:ReferenceParameters>'
            f"</x:ResourceCreated><rsp:Shell><rsp:ShellId>{shell.id}</rsp:ShellId>"
            f"<rsp:ResourceUri>{SHELL_URI}</rsp:ResourceUri><rsp:Owner>{escape(user)}</rsp:Owner>"
            "<rsp:ClientIP>127.0.0.1</rsp:ClientIP><rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"
            "<rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams>"
            "</rsp:Shell>"
        )
        return _envelope(A_CREATE + "Response", message_id, body)

    def _delete(self, shell: WinRMShell, message_id: str) -> bytes:
        for cmd in shell.commands.values():
            cmd.cancel.set()
        self.shells.pop(shell.id, None)
        return _envelope(A_DELETE + "Response", message_id, "")

    def _command(self, shell: WinRMShell, body: ET.Element | None, message_id: str) -> bytes:
        line = body.find("rsp:CommandLine", NS) if body is not None else None
        if line is None:
            raise _Fault(500, "w:InvalidParameter", 2150858882, "The WS-Management service cannot process the "
                         "request because the CommandLine element is missing.")
        command = (line.findtext("rsp:Command", "", NS) or "").strip()
        args = [a.text or "" for a in line.iterfind("rsp:Arguments", NS)]
        command_line = " ".join([command, *args]).strip()
        cmd = WinRMCommand(shell, command_line, asyncio.get_running_loop())
        shell.commands[cmd.id] = cmd
        loop = asyncio.get_running_loop()
        loop.run_in_executor(self.guest.runtime.executor, self.guest.run_winrm, cmd, shell.user)
        body_xml = f"<rsp:CommandResponse><rsp:CommandId>{cmd.id}</rsp:CommandId></rsp:CommandResponse>"
        return _envelope(A_SHELL + "CommandResponse", message_id, body_xml)

    def _find(self, shell: WinRMShell, body: ET.Element | None, tag: str) -> tuple[WinRMCommand, ET.Element]:
        el = body.find(tag, NS) if body is not None else None
        cid = el.get("CommandId") if el is not None else None
        if el is None or cid is None:
            raise _Fault(500, "w:InvalidParameter", 2150858882, "The CommandId attribute is missing.")
        cmd = shell.commands.get(cid.upper())
        if cmd is None:
            raise _Fault(500, "w:InvalidParameter", 2150859243, f"The command with CommandId {cid} was not found.")
        return cmd, el

    async def _receive(self, shell: WinRMShell, body: ET.Element | None, message_id: str, timeout: float) -> bytes:
        cmd, _ = self._find(shell, body, "rsp:Receive/rsp:DesiredStream")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max(timeout, 0.5), MAX_WAIT)
        while True:
            done = cmd.done
            out, err = cmd.out.take(), cmd.err.take()
            if out or err or done:
                break
            cmd.changed.clear()
            if cmd.done or cmd.out._buf or cmd.err._buf:
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise _Fault(500, "w:TimedOut", TIMEOUT_CODE, "The WS-Management service cannot complete the "
                             "operation within the time specified in OperationTimeout.  ")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(cmd.changed.wait(), remaining)
        end = ' End="true"' if done else ""
        streams = ""
        for name, data in (("stdout", out), ("stderr", err)):
            if data:
                streams += (f'<rsp:Stream Name="{name}" CommandId="{cmd.id}">'
                            f"{base64.b64encode(data).decode()}</rsp:Stream>")
            if done:
                streams += f'<rsp:Stream Name="{name}" CommandId="{cmd.id}"{end}></rsp:Stream>'
        if done:
            state = (f'<rsp:CommandState CommandId="{cmd.id}" State="{STATE}Done">'
                     f"<rsp:ExitCode>{cmd.exit_code}</rsp:ExitCode></rsp:CommandState>")
        else:
            state = f'<rsp:CommandState CommandId="{cmd.id}" State="{STATE}Running"/>'
        return _envelope(A_SHELL + "ReceiveResponse", message_id,
                         f'<rsp:ReceiveResponse SequenceID="0">{streams}{state}</rsp:ReceiveResponse>')

    def _send(self, shell: WinRMShell, body: ET.Element | None, message_id: str) -> bytes:
        cmd, el = self._find(shell, body, "rsp:Send/rsp:Stream")
        if el.text:
            cmd.stdin.feed(base64.b64decode(el.text))
        if (el.get("End") or "").lower() == "true":
            cmd.stdin.close()
        return _envelope(A_SHELL + "SendResponse", message_id, "<rsp:SendResponse/>")

    def _signal(self, shell: WinRMShell, body: ET.Element | None, message_id: str) -> bytes:
        cmd, el = self._find(shell, body, "rsp:Signal")
        code = (el.findtext("rsp:Code", "", NS) or "").strip()
        if code.endswith(("terminate", "ctrl_c", "ctrl_break")) and not cmd.done:
            cmd.cancel.set()
        if code.endswith("terminate"):
            shell.commands.pop(cmd.id, None)
        return _envelope(A_SHELL + "SignalResponse", message_id, "<rsp:SignalResponse/>")


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            500: "Internal Server Error"}
