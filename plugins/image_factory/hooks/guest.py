"""Talk to a build VM's operating system: SSH for Linux guests, WinRM for Windows guests.

Both hooks extend the Airflow providers' hooks (``SSHHook``, ``WinRMHook``) but are built from
the values the pipeline derives per run (address, per-run credentials, the host key read through
Azure's runCommand) instead of an Airflow Connection: a build VM lives for one run, so a stored
connection would only be a stale copy of data the run already has.

Scripts get the same contract on both: a name (for logs and errors), parameters that reach the
script only as quoted data, output streamed to the task log line by line with secrets masked,
and a :class:`GuestScriptError` carrying the tail of the output when they fail.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import selectors
import shlex
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import paramiko
from airflow.providers.microsoft.winrm.hooks.winrm import WinRMHook
from airflow.providers.ssh.hooks.ssh import SSHHook
from airflow.sdk.log import mask_secret
from tenacity import Retrying, retry_if_not_exception_type, stop_after_attempt, wait_fixed

from image_factory import guest_commands
from image_factory.errors import GuestScriptError

if TYPE_CHECKING:
    from image_factory.credentials import SshKeyPair

TAIL_LINES = 20
DEFAULT_SCRIPT_TIMEOUT = 3600.0
IMAGE_STATE_KEY = r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State"
SYSPREP_COMMAND = r"C:\Windows\System32\Sysprep\sysprep.exe /generalize /oobe /quit /mode:vm"
# cmd.exe's command-line limit: WinRM starts every command through it.
WINDOWS_COMMAND_LINE_LIMIT = 8191
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MASK = "***"


# results and errors -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScriptResult:
    name: str
    exit_code: int
    stdout: str
    stderr: str
    seconds: float


@dataclass(frozen=True)
class DetachedResult:
    """What was seen of a command that powers the guest off: the session may end without an exit status."""

    started: bool
    exit_code: int | None
    connection_dropped: bool
    stdout: str
    stderr: str


class HostKeyMismatchError(paramiko.SSHException):
    """The guest presented a host key other than the one Azure reported for it: never connect."""

    def __init__(self, host: str, expected: str, presented: str) -> None:
        self.host = host
        self.expected = expected
        self.presented = presented
        super().__init__(
            f"host key of {host} does not match the pinned key: expected {expected}, "
            f"the server presented {presented}; refusing to connect"
        )


# pure helpers ----------------------------------------------------------------------------------------
def validate_param_names(params: Mapping[str, str] | None) -> dict[str, str]:
    """Parameter names become variable names in the guest's shell: only identifiers are allowed."""
    checked: dict[str, str] = {}
    for name, value in (params or {}).items():
        if not isinstance(name, str) or not _PARAM_NAME.match(name):
            raise ValueError(f"script parameter name {name!r} is not a valid shell identifier")
        checked[name] = str(value)
    return checked


def bash_payload(text: str, params: Mapping[str, str] | None) -> str:
    """The bytes ``bash -s`` reads: exports of the quoted parameters, then the script as one group.

    The braces make bash parse the whole script before running any of it, so a command inside
    that reads stdin (an installer prompt) sees end-of-file instead of swallowing the rest of
    the script, and a syntax error anywhere fails the script before it changes anything.
    """
    exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in validate_param_names(params).items())
    body = text if text.endswith("\n") else text + "\n"
    return f"{exports}{{\n{body}}}\n"


def powershell_literal(value: str) -> str:
    """A PowerShell single-quoted literal: nothing inside is expanded; quotes (incl. typographic) doubled."""
    return "'" + re.sub(r"(['\u2018\u2019\u201a\u201b])", r"\1\1", value) + "'"


def powershell_payload(text: str, params: Mapping[str, str] | None) -> str:
    """Parameters as environment variables set from literals, then the script."""
    lines = [f"$env:{name} = {powershell_literal(value)}" for name, value in validate_param_names(params).items()]
    return "\n".join(["$ProgressPreference = 'SilentlyContinue'", *lines, text])


def decode_clixml(stderr: str) -> str:
    """PowerShell reports errors over WinRM as CLIXML; keep only the error text a human reads."""
    if not stderr.startswith("#< CLIXML"):
        return stderr
    try:
        root = ET.fromstring(stderr.split("\n", 1)[1] if "\n" in stderr else stderr[len("#< CLIXML") :])
    except ET.ParseError:
        return stderr
    parts = [el.text or "" for el in root.iter() if el.tag.endswith("}S") and el.get("S") == "Error"]
    text = "".join(parts).replace("_x000D__x000A_", "\n").replace("_x000A_", "\n")
    return text


def tail_of(stdout: str, stderr: str, lines: int = TAIL_LINES) -> str:
    """The last lines of stdout then stderr (the streams arrive apart, so they are not interleaved)."""
    return "\n".join((stdout.splitlines() + stderr.splitlines())[-lines:])


def key_fingerprint(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


def parse_host_key(line: str) -> paramiko.PKey:
    """A pinned host key from its OpenSSH line ("ssh-ed25519 AAAA… comment")."""
    parts = line.strip().split()
    constructor = SSHHook._host_key_mappings.get(parts[0]) if parts else None
    if len(parts) < 2 or constructor is None:
        raise ValueError("pinned host key must be an OpenSSH public key line such as 'ssh-ed25519 AAAA…'")
    try:
        return constructor(data=base64.b64decode(parts[1], validate=True))
    except (binascii.Error, paramiko.SSHException, ValueError) as error:
        raise ValueError(f"pinned host key is not a valid {parts[0]} key: {error}") from None


class _Redactor:
    """Replaces secrets in text bound for logs (Airflow's masker does it too; this also covers non-task logs)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, _MASK)
        return text


class _LineStream:
    """Collects a byte stream and logs each complete line as it arrives."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self.emit = emit
        self.chunks: list[bytes] = []
        self._partial = b""

    def feed(self, data: bytes) -> None:
        self.chunks.append(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self.emit(line.decode("utf-8", "replace").rstrip("\r"))

    def close(self) -> str:
        if self._partial:
            self.emit(self._partial.decode("utf-8", "replace"))
            self._partial = b""
        return b"".join(self.chunks).decode("utf-8", "replace")


# Linux ---------------------------------------------------------------------------------------------
class GuestSSHHook(SSHHook):
    """SSH to a build VM with the run's key pair, trusting only the host key Azure reported for it.

    Nothing comes from the machine's SSH setup: no known_hosts file is read or written, no agent
    and no key files are tried, ``~/.ssh/config`` is ignored. An unknown host is rejected and a
    different key raises :class:`HostKeyMismatchError` naming the host and both fingerprints.
    """

    def __init__(
        self,
        host: str,
        username: str,
        key_pair: SshKeyPair,
        host_key: str,
        *,
        port: int = 22,
        conn_timeout: int = 30,
        conn_retry_attempts: int = 3,
    ) -> None:
        mask_secret(key_pair.private_openssh)
        pinned = parse_host_key(host_key)
        super().__init__(
            remote_host=host,
            username=username,
            port=port,
            conn_timeout=conn_timeout,
            cmd_timeout=None,
            conn_retry_attempts=conn_retry_attempts,
            no_host_key_check=False,
        )
        # the provider may have picked these up from ~/.ssh/config: this hook uses only what it was given
        self.key_file = None
        self.host_proxy_cmd = None
        self.password = None
        self.look_for_keys = False
        self.allow_host_key_change = False
        self.pkey = key_pair.paramiko_key()
        self.host_key = pinned
        self._redact = _Redactor(line for line in key_pair.private_openssh.splitlines() if "PRIVATE KEY" not in line)

    def __repr__(self) -> str:
        return f"GuestSSHHook({self.username}@{self.remote_host}:{self.port})"

    # connection ----------------------------------------------------------------------------------
    def _host_key_name(self) -> str:
        return self.remote_host if self.port == 22 else f"[{self.remote_host}]:{self.port}"

    def get_conn(self) -> paramiko.SSHClient:
        """A connected client that trusts only the pinned host key (RejectPolicy for anything else)."""
        if self.client is not None:
            transport = self.client.get_transport()
            if transport is not None and transport.is_active():
                return self.client
        assert self.host_key is not None
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.get_host_keys().add(self._host_key_name(), self.host_key.get_name(), self.host_key)
        try:
            for attempt in Retrying(
                reraise=True,
                stop=stop_after_attempt(self.conn_retry_attempts),
                wait=wait_fixed(3),
                retry=retry_if_not_exception_type((paramiko.BadHostKeyException, paramiko.AuthenticationException)),
            ):
                with attempt:
                    client.connect(
                        hostname=self.remote_host,
                        port=self.port,
                        username=self.username,
                        pkey=self.pkey,
                        look_for_keys=False,
                        allow_agent=False,
                        timeout=self.conn_timeout,
                        banner_timeout=self.banner_timeout,
                        auth_timeout=self.auth_timeout,
                        compress=self.compress,
                    )
        except paramiko.BadHostKeyException as error:
            client.close()
            raise HostKeyMismatchError(
                self.remote_host, key_fingerprint(error.expected_key), key_fingerprint(error.key)
            ) from None
        except Exception:
            client.close()
            raise
        if self.keepalive_interval:
            client.get_transport().set_keepalive(self.keepalive_interval)  # type: ignore[union-attr]
        self.client = client
        return client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    # execution -----------------------------------------------------------------------------------
    def _log_line(self, name: str, stream: str) -> Callable[[str], None]:
        log = self.log.info if stream == "stdout" else self.log.warning
        return lambda line: log("[%s] %s", name, self._redact(line))

    def _exec(
        self, name: str, command: str, stdin: str, timeout: float, *, log_output: bool = True
    ) -> tuple[bool, int | None, str, str]:
        """Run ``command``, feed ``stdin``, stream output; returns (started, exit code or None, stdout, stderr).

        ``started`` is True once the server accepted the exec request: from then on a dropped
        connection means the guest went away while the command ran (which a shutdown expects).
        """
        quiet: Callable[[str], None] = lambda line: None  # noqa: E731
        out = _LineStream(self._log_line(name, "stdout") if log_output else quiet)
        err = _LineStream(self._log_line(name, "stderr") if log_output else quiet)
        transport = self.get_conn().get_transport()
        assert transport is not None
        channel = transport.open_session(timeout=self.conn_timeout)
        started = False
        timed_out = False
        try:
            channel.exec_command(command)
            started = True
            if stdin:
                channel.sendall(stdin.encode())
            channel.shutdown_write()
            deadline = time.monotonic() + timeout
            with selectors.DefaultSelector() as selector:
                selector.register(channel, selectors.EVENT_READ)
                while True:
                    while channel.recv_ready():
                        out.feed(channel.recv(65536))
                    while channel.recv_stderr_ready():
                        err.feed(channel.recv_stderr(65536))
                    if channel.closed or (channel.exit_status_ready() and channel.eof_received):
                        if not (channel.recv_ready() or channel.recv_stderr_ready()):
                            break
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        timed_out = True
                        break
                    selector.select(min(remaining, 1.0))
        except (EOFError, OSError, paramiko.SSHException):
            if not started:
                raise
        finally:
            channel.close()
        stdout, stderr = out.close(), err.close()
        if timed_out:
            raise GuestScriptError(
                name, None, self._redact(tail_of(stdout, stderr)), reason=f"did not finish within {timeout:g} s"
            )
        # paramiko reports -1 when the channel closed without an exit status (the session dropped)
        status = channel.recv_exit_status() if channel.exit_status_ready() else -1
        return started, (None if status == -1 else status), stdout, stderr

    def run_script(
        self,
        name: str,
        text: str,
        *,
        sudo: bool = True,
        params: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_SCRIPT_TIMEOUT,
        check: bool = True,
        log_output: bool = True,
    ) -> ScriptResult:
        """Run a bash script on the guest, fed on stdin to ``bash -s`` (under ``sudo -n`` when asked).

        Why stdin rather than an SFTP upload: nothing is written to the guest's disk, so neither
        the script nor its parameters can be left behind in the image being built (a dropped
        connection would skip an upload's cleanup), and there is no temp-file race to get right.
        Parameters arrive only as ``export NAME='quoted value'`` lines read by bash as data:
        never on a command line (visible in ``ps`` and in logs) and never expanded.
        """
        payload = bash_payload(text, params)
        command = "sudo -n bash -s" if sudo else "bash -s"
        self.log.info("Running guest script %r on %s (%s)", name, self.remote_host, "sudo" if sudo else self.username)
        began = time.monotonic()
        _, exit_code, stdout, stderr = self._exec(name, command, payload, timeout, log_output=log_output)
        seconds = time.monotonic() - began
        self.log.info("Guest script %r ended with exit code %s after %.3f s", name, exit_code, seconds)
        if exit_code is None:
            raise GuestScriptError(
                name,
                None,
                self._redact(tail_of(stdout, stderr)),
                reason="lost its SSH session before reporting an exit status",
            )
        if check and exit_code != 0:
            raise GuestScriptError(name, exit_code, self._redact(tail_of(stdout, stderr)))
        return ScriptResult(name, exit_code, stdout, stderr, seconds)

    def package_manifest(self) -> list[tuple[str, str]]:
        """Installed Debian packages and versions, as dpkg records them (for the image's manifest)."""
        result = self.run_script(
            "package-manifest", "dpkg-query -W -f='${Package}\\t${Version}\\n'", sudo=False, log_output=False
        )
        rows = (line.split("\t", 1) for line in result.stdout.splitlines() if "\t" in line)
        return sorted((package, version) for package, version in rows)

    def pending_upgrades(self) -> list[tuple[str, str]]:
        """What a full upgrade would install now, as (package, version), after refreshing apt's lists.

        Raises :class:`GuestScriptError` when the lists could not all be refreshed (no mirror
        reachable: apt-get update then warns and exits 0 with old or no lists, which would
        otherwise read as "nothing to upgrade").
        """
        update = self.run_script("apt-get update", guest_commands.LINUX_APT_UPDATE, check=False)
        failure = guest_commands.apt_update_failure(update.exit_code, update.stdout, update.stderr)
        if failure:
            raise GuestScriptError("apt-get update", update.exit_code, self._redact(tail_of(update.stdout, update.stderr)),
                                   reason=f"did not refresh the package lists ({failure})")
        result = self.run_script("apt-get -s dist-upgrade", guest_commands.LINUX_SIMULATE_UPGRADE, log_output=False)
        return guest_commands.parse_apt_simulation(result.stdout)

    def run_detached_shutdown(self, command: str, *, timeout: float = 600.0) -> DetachedResult:
        """Run a command that ends by powering the guest off (e.g. generalize), and say what was seen.

        The SSH session drops as the guest goes down, usually before an exit status arrives. A
        drop counts as success only once the server had accepted the command; failing to start
        it, or a non-zero exit status, raises.
        """
        name = "detached-shutdown"
        self.log.info(
            "Running %r on %s; the session is expected to end as the guest powers off", command, self.remote_host
        )
        try:
            started, exit_code, stdout, stderr = self._exec(name, command, "", timeout)
        except HostKeyMismatchError:
            raise
        except (EOFError, OSError, paramiko.SSHException) as error:
            raise GuestScriptError(name, None, "", reason=f"could not be started: {error}") from error
        result = DetachedResult(started, exit_code, exit_code is None, stdout, stderr)
        if exit_code not in (None, 0):
            raise GuestScriptError(name, exit_code, self._redact(tail_of(stdout, stderr)))
        self.close()
        return result


# Windows -------------------------------------------------------------------------------------------
class GuestWinRMHook(WinRMHook):
    """WinRM over HTTPS (5986, NTLM with message encryption) to a Windows build VM with the run's password.

    The certificate is validated unless the endpoint is the local Azure, whose guests use a
    self-signed certificate; real Azure build VMs need a verifiable listener certificate.
    """

    def __init__(
        self,
        host: str,
        username: str,
        password: str,
        *,
        port: int = 5986,
        local_azure: bool = False,
        operation_timeout_sec: int = 20,
        read_timeout_sec: int = 30,
    ) -> None:
        mask_secret(password)
        super().__init__(
            endpoint=f"https://{host}:{port}/wsman",
            remote_host=host,
            remote_port=port,
            transport="ntlm",
            username=username,
            password=password,
            server_cert_validation="ignore" if local_azure else "validate",
            operation_timeout_sec=operation_timeout_sec,
            read_timeout_sec=read_timeout_sec,
        )
        self._redact = _Redactor([password])

    def __repr__(self) -> str:
        return f"GuestWinRMHook({self.username}@{self.endpoint})"

    def log_output(self, output: bytes | None, level: int = 20, output_encoding: str = "utf-8") -> None:
        """The provider streams each chunk here; mask secrets before they reach the log."""
        if output:
            for line in output.decode(output_encoding, "replace").splitlines():
                if not line.startswith("#< CLIXML") and not line.startswith("<Objs "):
                    self.log.log(level, "%s", self._redact(line))

    def _execute(self, command: str, arguments: list[str]) -> tuple[int, str, str]:
        """Run one command in a fresh shell, streaming output through the provider's reader."""
        conn = self.get_conn()
        shell_id = conn.open_shell()
        try:
            command_id = conn.run_command(shell_id, command, arguments)
            stdout, stderr = [], []
            code: int | None = None
            done = False
            while not done:
                out, err, code, done = self.get_command_output(conn, shell_id, command_id)
                stdout.append(out)
                stderr.append(err)
            conn.cleanup_command(shell_id, command_id)
        finally:
            conn.close_shell(shell_id)
        return (
            (code if code is not None else -1),
            b"".join(stdout).decode("utf-8", "replace"),
            b"".join(stderr).decode("utf-8", "replace"),
        )

    def run_script(
        self, name: str, text: str, params: Mapping[str, str] | None = None, *, check: bool = True
    ) -> ScriptResult:
        """Run a PowerShell script; parameters become ``$env:NAME`` set from single-quoted literals.

        The script travels as ``-EncodedCommand`` (UTF-16LE, base64), so no quoting of the
        script itself can go wrong; the price is cmd.exe's command-line limit, checked here.
        """
        payload = powershell_payload(text, params)
        encoded = base64.b64encode(payload.encode("utf-16-le")).decode("ascii")
        arguments = ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-EncodedCommand", encoded]
        if len("powershell " + " ".join(arguments)) > WINDOWS_COMMAND_LINE_LIMIT:
            raise ValueError(
                f"guest script {name!r} is too long to run over WinRM as one encoded command "
                f"({len(payload)} characters); split it"
            )
        self.log.info("Running guest script %r on %s", name, self.remote_host)
        began = time.monotonic()
        exit_code, stdout, raw_stderr = self._execute("powershell", arguments)
        stderr = decode_clixml(raw_stderr)
        seconds = time.monotonic() - began
        self.log.info("Guest script %r ended with exit code %s after %.3f s", name, exit_code, seconds)
        if check and exit_code != 0:
            raise GuestScriptError(name, exit_code, self._redact(tail_of(stdout, stderr)))
        return ScriptResult(name, exit_code, stdout, stderr, seconds)

    def image_state(self) -> str:
        """Windows setup's ImageState: IMAGE_STATE_COMPLETE on a deployed machine, …_RESEAL_TO_OOBE after sysprep."""
        result = self.run_script("image-state", f"(Get-ItemProperty -Path '{IMAGE_STATE_KEY}').ImageState")
        return result.stdout.strip()

    def package_manifest(self) -> list[tuple[str, str]]:
        """Installed programs (Get-Package) and updates (Get-HotFix, version "hotfix") for the image's manifest."""
        script = (
            "$items = @(Get-Package | ForEach-Object { @{name = [string]$_.Name; version = [string]$_.Version} })\n"
            "$items += @(Get-HotFix | ForEach-Object { @{name = [string]$_.HotFixID; version = 'hotfix'} })\n"
            "ConvertTo-Json -InputObject $items -Compress"
        )
        result = self.run_script("package-manifest", script)
        entries: dict[str, str] = {}
        for item in json.loads(result.stdout.strip() or "[]"):
            # an update can be listed by both cmdlets: keep the entry that names a version
            name, version = str(item["name"]), str(item.get("version") or "")
            if not entries.get(name):
                entries[name] = version
        return sorted(entries.items())

    @staticmethod
    def sysprep_command() -> str:
        """Generalize for capture and return at once (``/quit``): the pipeline watches ImageState, then stops the VM."""
        return SYSPREP_COMMAND
