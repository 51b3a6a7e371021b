"""The simulated Linux guest's sshd: real SSH (asyncssh) on the VM's address, commands run in the model.

Public-key authentication against ``~/.ssh/authorized_keys`` in the simulated filesystem (so
``waagent -deprovision+user`` really locks the build user out), password authentication only
when cloud-init enabled it, exec requests with exit status, an interactive shell, and SFTP/scp
into the simulated filesystem. The version string says ``simulated``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import stat
import threading
import time
from typing import TYPE_CHECKING, Any

import asyncssh

from emulator.guests.simulated.linux import FsError, check_password
from emulator.guests.simulated.session import StreamInput

if TYPE_CHECKING:
    from emulator.guests.simulated.runtime import Guest

log = logging.getLogger("emulator.guests.simulated")
SERVER_VERSION = "LocalAzure_SimulatedGuest Debian-12 simulated"


def _key_blobs(lines: list[str]) -> set[bytes]:
    blobs = set()
    for line in lines:
        parts = line.split()
        for i, part in enumerate(parts):  # skip authorized_keys options: find the key type
            if part.startswith(("ssh-", "ecdsa-", "sk-")) and i + 1 < len(parts):
                try:
                    blobs.add(asyncssh.import_public_key(f"{part} {parts[i + 1]}").public_data)
                except (asyncssh.KeyImportError, ValueError):
                    pass
                break
    return blobs


class _Server(asyncssh.SSHServer):
    def __init__(self, guest: Guest) -> None:
        self.guest = guest
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.guest.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.guest.connections.discard(self.conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        with self.guest.lock:
            if not self._login_allowed(username):
                return False
            keys = self.guest.system.authorized_keys(username)
        ok = key.public_data in _key_blobs(keys)
        self.guest.log(f"ssh: public key for {username} {'accepted' if ok else 'refused'}")
        return ok

    def password_auth_supported(self) -> bool:
        with self.guest.lock:
            return self.guest.system.password_auth_enabled()

    def validate_password(self, username: str, password: str) -> bool:
        with self.guest.lock:
            if not self._login_allowed(username) or username == "root":
                return False
            stored = self.guest.system.users[username].get("password")
        ok = check_password(stored, password)
        self.guest.log(f"ssh: password for {username} {'accepted' if ok else 'refused'}")
        return ok

    def _login_allowed(self, username: str) -> bool:
        user = self.guest.system.users.get(username)
        return user is not None and not str(user.get("shell", "")).endswith("nologin")


class _Writer:
    """Output from a worker thread to an SSH channel, in order, through the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, writer: Any, crlf: bool) -> None:
        self.loop, self.writer, self.crlf = loop, writer, crlf

    def write(self, text: str) -> None:
        if not text:
            return
        if self.crlf:
            text = text.replace("\r\n", "\n").replace("\n", "\r\n")
        data = text.encode()
        self.loop.call_soon_threadsafe(self._write, data)

    def _write(self, data: bytes) -> None:
        with contextlib.suppress(Exception):  # the channel may have closed under us
            self.writer.write(data)


async def _handle(guest: Guest, process: asyncssh.SSHServerProcess[bytes]) -> None:
    loop = asyncio.get_running_loop()
    username = process.get_extra_info("username")
    command = process.command
    cancel = threading.Event()
    stdin = StreamInput(cancel)
    pty = process.get_terminal_type() is not None

    async def feed() -> None:
        try:
            while True:
                data = await process.stdin.read(65536)
                if not data:
                    break
                stdin.feed(data)
        except Exception:
            pass
        stdin.close()

    async def watch() -> None:
        with contextlib.suppress(Exception):
            await process.channel.wait_closed()
        cancel.set()

    feeder = loop.create_task(feed())
    watcher = loop.create_task(watch())
    out = _Writer(loop, process.stdout, pty)
    err = _Writer(loop, process.stderr if not pty else process.stdout, pty)
    try:
        code = await loop.run_in_executor(guest.runtime.executor, guest.run_ssh, command, username, stdin, out, err,
                                          cancel, pty)
    finally:
        feeder.cancel()
    if code is None:  # the guest powered off under the command: the connection drops, no exit status
        watcher.cancel()
        return
    watcher.cancel()
    with contextlib.suppress(Exception):
        process.exit(code)


class _File:
    def __init__(self, path: str, data: bytes, writable: bool, append: bool) -> None:
        self.path, self.data, self.writable, self.append = path, bytearray(data), writable, append
        self.dirty = False
        self.mode: int | None = None


class SimulatedSFTP(asyncssh.SFTPServer):
    """SFTP (and scp) into the simulated filesystem, with the logged-in user's permissions."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], guest: Guest) -> None:
        super().__init__(chan)
        self.guest = guest
        self.user = str(chan.get_extra_info("username"))
        self.system = guest.system

    def _path(self, path: bytes) -> str:
        text = path.decode(errors="replace") or "."
        home = self.system.home_of(self.user) or "/"
        return self.system.norm(text, home)

    def _attrs(self, path: str, size: int | None = None) -> asyncssh.SFTPAttrs:
        with self.guest.lock:
            if not self.system.exists(path):
                raise asyncssh.SFTPNoSuchFile(f"No such file: {path}")
            is_dir = self.system.is_dir(path) and path not in self.system.files
            mode = self.system.mode_of(path) | (stat.S_IFDIR if is_dir else stat.S_IFREG)
            if size is None:
                size = 4096 if is_dir else len(self.system.read_bytes(path)) if path in self.system.files else 0
            owner = self.system.owner_of(path)
            uid = int(self.system.users.get(owner, {}).get("uid", 0))
        now = int(time.time())
        return asyncssh.SFTPAttrs(type=2 if is_dir else 1, size=size, uid=uid, gid=uid, owner=owner, group=owner,
                                  permissions=mode, atime=now, mtime=now, nlink=1)

    def format_user(self, uid: int | None) -> str:
        return next((n for n, u in self.system.users.items() if u.get("uid") == uid), str(uid))

    def format_group(self, gid: int | None) -> str:
        return self.format_user(gid)

    def realpath(self, path: bytes) -> bytes:
        return self._path(path).encode()

    def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return self._attrs(self._path(path))

    def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return self._attrs(self._path(path))

    def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:
        f = file_obj
        assert isinstance(f, _File)
        if not self.system.exists(f.path):
            return asyncssh.SFTPAttrs(type=1, size=len(f.data), permissions=0o644 | stat.S_IFREG)
        return self._attrs(f.path, size=len(f.data))

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        p = self._path(path)
        write = bool(pflags & (asyncssh.FXF_WRITE | asyncssh.FXF_APPEND))
        with self.guest.lock:
            exists = self.system.is_file(p)
            if exists and pflags & asyncssh.FXF_EXCL:
                raise asyncssh.SFTPFileAlreadyExists(f"File already exists: {p}")
            if not exists and not pflags & asyncssh.FXF_CREAT:
                raise asyncssh.SFTPNoSuchFile(f"No such file: {p}")
            if write and not self.system.can_write(self.user, p):
                raise asyncssh.SFTPPermissionDenied(f"Permission denied: {p}")
            if not self.system.is_dir(posixpath.dirname(p)):
                raise asyncssh.SFTPNoSuchFile(f"No such directory: {posixpath.dirname(p)}")
            data = b""
            if exists and not pflags & asyncssh.FXF_TRUNC:
                try:
                    data = self.system.read_bytes(p, self.user)
                except FsError as exc:
                    raise asyncssh.SFTPPermissionDenied(f"{exc}: {p}") from exc
        f = _File(p, data, write, bool(pflags & asyncssh.FXF_APPEND))
        if write and (not exists or pflags & asyncssh.FXF_TRUNC):
            f.dirty = True
            if attrs.permissions is not None:
                f.mode = attrs.permissions & 0o7777
        return f

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        assert isinstance(file_obj, _File)
        return bytes(file_obj.data[offset:offset + size])

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        assert isinstance(file_obj, _File)
        f = file_obj
        if f.append:
            offset = len(f.data)
        if offset > len(f.data):
            f.data.extend(b"\0" * (offset - len(f.data)))
        f.data[offset:offset + len(data)] = data
        f.dirty = True
        return len(data)

    def close(self, file_obj: object) -> None:
        assert isinstance(file_obj, _File)
        f = file_obj
        if not f.dirty:
            return
        with self.guest.lock:
            try:
                self.system.write(f.path, bytes(f.data), user=self.user, mode=f.mode)
            except FsError as exc:
                raise asyncssh.SFTPPermissionDenied(f"{exc}: {f.path}") from exc
        self.guest.changed()
        self.guest.record_event("sftp", self.user, f"put {f.path} ({len(f.data)} bytes)", 0)

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        p = self._path(path)
        with self.guest.lock:
            entry = self.system.files.get(p) or self.system.dirs.get(p)
            if entry is None:
                raise asyncssh.SFTPNoSuchFile(f"No such file: {p}")
            if attrs.permissions is not None:
                if self.user != "root" and entry.get("owner") != self.user:
                    raise asyncssh.SFTPPermissionDenied(f"Operation not permitted: {p}")
                entry["mode"] = attrs.permissions & 0o7777
        self.guest.changed()

    def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self.setstat(path, attrs)

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        assert isinstance(file_obj, _File)
        if attrs.permissions is not None:
            file_obj.mode = attrs.permissions & 0o7777
            file_obj.dirty = True
        if attrs.size is not None:
            del file_obj.data[attrs.size:]
            file_obj.dirty = True

    def listdir(self, path: bytes) -> list[bytes]:
        p = self._path(path)
        with self.guest.lock:
            try:
                names = self.system.listdir(p)
            except FsError as exc:
                raise asyncssh.SFTPNoSuchFile(f"{exc}: {p}") from exc
            if not self.system.can_read(self.user, p.rstrip("/") + "/x"):
                raise asyncssh.SFTPPermissionDenied(f"Permission denied: {p}")
        return [b".", b".."] + [n.encode() for n in names]

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        p = self._path(path)
        with self.guest.lock:
            try:
                self.system.mkdir(p, user=self.user, mode=(attrs.permissions or 0o755) & 0o7777)
            except FsError as exc:
                raise asyncssh.SFTPFailure(f"{exc}: {p}") from exc
        self.guest.changed()

    def rmdir(self, path: bytes) -> None:
        p = self._path(path)
        with self.guest.lock:
            if self.system.listdir(p):
                raise asyncssh.SFTPFailure(f"Directory not empty: {p}")
            try:
                self.system.remove(p, user=self.user, recursive=True)
            except FsError as exc:
                raise asyncssh.SFTPPermissionDenied(f"{exc}: {p}") from exc
        self.guest.changed()

    def remove(self, path: bytes) -> None:
        p = self._path(path)
        with self.guest.lock:
            try:
                self.system.remove(p, user=self.user)
            except FsError as exc:
                raise asyncssh.SFTPNoSuchFile(f"{exc}: {p}") from exc
        self.guest.changed()

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        old, new = self._path(oldpath), self._path(newpath)
        with self.guest.lock:
            try:
                data = self.system.read_bytes(old, self.user)
                self.system.write(new, data, user=self.user, mode=self.system.mode_of(old))
                self.system.remove(old, user=self.user)
            except FsError as exc:
                raise asyncssh.SFTPFailure(f"{exc}: {old}") from exc
        self.guest.changed()

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        self.rename(oldpath, newpath)

    def exit(self) -> None:
        """End the session with exit status 0 as OpenSSH's sftp-server does (scp over SFTP checks it)."""
        with contextlib.suppress(Exception):
            self.channel.exit(0)


async def start_sshd(guest: Guest, host: str, port: int) -> asyncssh.SSHAcceptor:
    with guest.lock:
        keys = [asyncssh.import_private_key(k) for k in guest.system.host_keys()]
    return await asyncssh.create_server(
        lambda: _Server(guest), host, port,
        server_host_keys=keys,
        process_factory=lambda process: _handle(guest, process),
        sftp_factory=lambda chan: SimulatedSFTP(chan, guest),
        allow_scp=True,
        encoding=None,
        server_version=SERVER_VERSION,
        x11_forwarding=False,
        agent_forwarding=False,
        reuse_address=True,
        login_timeout=60,
    )
