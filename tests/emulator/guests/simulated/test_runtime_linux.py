"""Simulated Linux guests on a live runtime: real SSH (paramiko and the ssh CLI), lifecycle events, capture."""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import time
from pathlib import Path

import paramiko
import pytest

from emulator.guests.simulated import disk
from emulator.guests.simulated.runtime import GuestNotRunning, SimulatedRuntime
from emulator.guests.simulated.session import Fault
from tests.emulator.guests.simulated.conftest import (
    SSH_PORT,
    Events,
    KeyPair,
    exec_,
    linux_spec,
    make_runtime,
    ssh_client,
)

pytestmark = [pytest.mark.timeout(120), pytest.mark.guests("simulated")]


def boot(runtime: SimulatedRuntime, events: Events, spec) -> str:  # type: ignore[no-untyped-def]
    runtime.boot(spec)
    events.wait("booted", spec.vm_id)
    return str(spec.address)


def test_key_auth_exec_and_exit_status(runtime: SimulatedRuntime, events: Events, keypair: KeyPair,
                                       other_keypair: KeyPair):
    spec = linux_spec("sshvm", keypair)
    addr = boot(runtime, events, spec)
    client = ssh_client(addr, "azureuser", keypair)
    assert "simulated" in client.get_transport().remote_version  # type: ignore[union-attr]
    assert exec_(client, "hostname; whoami; echo oops >&2; exit 3") == (3, "sshvm\nazureuser\n", "oops\n")
    assert exec_(client, "sudo bash -s", stdin="set -e\napt-get update -q >/dev/null\napt-get install -y -q jq "
                                               ">/dev/null\ndpkg-query -W -f='${Package}\\n' jq\n") == (0, "jq\n", "")
    client.close()
    with pytest.raises(paramiko.AuthenticationException):
        ssh_client(addr, "azureuser", other_keypair)
    with pytest.raises(paramiko.AuthenticationException):
        ssh_client(addr, "root", keypair)
    with pytest.raises(paramiko.AuthenticationException):  # no password was set: password logins are off
        ssh_client(addr, "azureuser", password="guess")
    assert runtime.is_running(spec.vm_id)


def test_password_auth_when_the_profile_has_one(runtime: SimulatedRuntime, events: Events, keypair: KeyPair):
    addr = boot(runtime, events, linux_spec("pwvm", keypair, password="Build-Pa55word!"))
    client = ssh_client(addr, "azureuser", password="Build-Pa55word!")
    assert exec_(client, "id -un")[1] == "azureuser\n"
    with pytest.raises(paramiko.AuthenticationException):
        ssh_client(addr, "azureuser", password="wrong")


def test_sftp_upload_then_run(runtime: SimulatedRuntime, events: Events, keypair: KeyPair):
    addr = boot(runtime, events, linux_spec("sftpvm", keypair))
    client = ssh_client(addr, "azureuser", keypair)
    sftp = client.open_sftp()
    sftp.putfo(io.BytesIO(b"#!/bin/bash\nset -e\necho \"customising $(hostname)\"\ntouch /etc/customised\n"),
               "/tmp/10-custom.sh")
    sftp.chmod("/tmp/10-custom.sh", 0o755)
    assert "10-custom.sh" in sftp.listdir("/tmp")
    with pytest.raises(PermissionError):
        sftp.putfo(io.BytesIO(b"x"), "/etc/not-mine")
    sftp.close()
    assert exec_(client, "sudo /tmp/10-custom.sh && test -f /etc/customised && echo ok") == \
        (0, "customising sftpvm\nok\n", "")


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")
def test_the_ssh_cli_and_scp(runtime: SimulatedRuntime, events: Events, keypair: KeyPair, tmp_path: Path):
    addr = boot(runtime, events, linux_spec("clivm", keypair))
    opts = ["-i", str(keypair.path), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]
    script = tmp_path / "setup.sh"
    script.write_text("set -e\nhostname\nwhoami\n")
    with script.open() as stdin:
        done = subprocess.run(["ssh", *opts, "-p", str(SSH_PORT), f"azureuser@{addr}", "sudo bash -s"], stdin=stdin,
                              capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout) == (0, "clivm\nroot\n")
    done = subprocess.run(["ssh", *opts, "-p", str(SSH_PORT), f"azureuser@{addr}", "exit 42"], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 42
    for legacy in ([], ["-O"]):  # SFTP-based scp, and the original scp protocol
        done = subprocess.run(["scp", *opts, *legacy, "-P", str(SSH_PORT), str(script), f"azureuser@{addr}:/tmp/s.sh"],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
    client = ssh_client(addr, "azureuser", keypair)
    assert exec_(client, "bash /tmp/s.sh")[1] == "clivm\nazureuser\n"


def test_deprovision_shutdown_capture_and_boot_from_the_capture(runtime: SimulatedRuntime, events: Events,
                                                                keypair: KeyPair, other_keypair: KeyPair):
    """The pipeline's Linux path: generalize over SSH, the connection drops, capture, smoke-boot a new VM."""
    source = disk.base_disk("Linux", "debian-12")
    pristine = disk.descriptor(source["os"])
    spec = linux_spec("buildvm", keypair, source=source)
    addr = boot(runtime, events, spec)
    client = ssh_client(addr, "azureuser", keypair)
    first_id = exec_(client, "cat /etc/machine-id")[1].strip()
    assert exec_(client, "sudo apt-get update -q && sudo apt-get install -y -q nginx")[0] == 0
    chan = client.get_transport().open_session()  # type: ignore[union-attr]
    chan.exec_command("sudo sh -c 'waagent -deprovision+user -force && truncate -s 0 /etc/machine-id && "
                      "shutdown -h now'")
    assert chan.recv_exit_status() == -1  # the connection dropped: no exit status, as with a real poweroff
    events.wait("stopped", spec.vm_id)
    assert not runtime.is_running(spec.vm_id)
    with pytest.raises(paramiko.SSHException):
        client.exec_command("true")
    with pytest.raises(OSError):
        ssh_client(addr, "azureuser", keypair)  # nothing listens any more

    captured = runtime.capture(spec.vm_id)
    assert source == pristine or source["os"] == pristine["os"]  # booting never changed the source disk
    assert "azureuser" not in captured["os"]["users"]

    smoke = linux_spec("smokevm", other_keypair, source=captured, username="smoketest")
    smoke_addr = boot(runtime, events, smoke)
    check = ssh_client(smoke_addr, "smoketest", other_keypair)
    assert exec_(check, "hostname")[1] == "smokevm\n"
    assert exec_(check, "id azureuser")[0] == 1
    assert exec_(check, "systemctl is-active nginx")[1] == "active\n"
    new_id = exec_(check, "cat /etc/machine-id")[1].strip()
    assert len(new_id) == 32 and new_id != first_id
    with pytest.raises(paramiko.AuthenticationException):
        ssh_client(smoke_addr, "azureuser", keypair)


def test_capture_needs_a_stopped_guest_and_copies(runtime: SimulatedRuntime, events: Events, keypair: KeyPair):
    spec = linux_spec("capvm", keypair)
    boot(runtime, events, spec)
    with pytest.raises(RuntimeError, match="while its guest is running"):
        runtime.capture(spec.vm_id)
    runtime.shutdown(spec.vm_id)
    events.wait("stopped", spec.vm_id)
    one, two = runtime.capture(spec.vm_id), runtime.capture(spec.vm_id)
    one["os"]["users"].clear()
    assert "azureuser" in two["os"]["users"]
    runtime.shutdown(spec.vm_id)  # already off: stopped is reported again, so a pending stop settles
    events.wait("stopped", spec.vm_id, count=2)


def test_start_after_stop_keeps_the_disk(runtime: SimulatedRuntime, events: Events, keypair: KeyPair):
    spec = linux_spec("restartvm", keypair)
    addr = boot(runtime, events, spec)
    assert exec_(ssh_client(addr, "azureuser", keypair), "sudo touch /etc/marker")[0] == 0
    runtime.shutdown(spec.vm_id, force=True)
    events.wait("stopped", spec.vm_id)
    runtime.boot(spec)
    events.wait("booted", spec.vm_id, count=2)
    client = ssh_client(addr, "azureuser", keypair)
    assert exec_(client, "test -f /etc/marker && hostname")[1] == "restartvm\n"


def test_commands_are_recorded_and_faults_fail_or_hang(runtime: SimulatedRuntime, events: Events, keypair: KeyPair):
    spec = linux_spec("faultvm", keypair)
    addr = boot(runtime, events, spec)
    guest = runtime.find("faultvm")[0]
    runtime.add_fault(guest, Fault("*apt-get install*", exit_code=100, stderr="E: Failed to fetch (injected)",
                                   count=1))
    runtime.add_fault(guest, Fault("sleep 1000", hang=True))
    client = ssh_client(addr, "azureuser", keypair)
    assert exec_(client, "sudo apt-get install -y htop") == (100, "", "E: Failed to fetch (injected)\n")
    assert exec_(client, "sudo apt-get install -y -q htop >/dev/null; echo $?")[1] == "0\n"  # count=1 is used up

    chan = client.get_transport().open_session()  # type: ignore[union-attr]
    chan.settimeout(1.0)
    chan.exec_command("sleep 1000")
    with pytest.raises(TimeoutError):
        chan.recv(1)  # hangs: no output, no exit status
    assert not chan.exit_status_ready()
    chan.close()

    log = guest.command_log()
    assert [(c["user"], c["channel"], c["command"], c["exit_code"]) for c in log[:2]] == [
        ("azureuser", "ssh", "sudo apt-get install -y htop", 100),
        ("azureuser", "ssh", "sudo apt-get install -y -q htop >/dev/null; echo $?", 0)]
    assert log[0]["fault"] == guest.faults[0].id and log[0]["time"].endswith("Z")
    deadline = time.time() + 5
    while time.time() < deadline and guest.command_log()[2]["state"] == "running":
        time.sleep(0.05)
    assert guest.command_log()[2]["state"].startswith("cancelled")


def test_run_command_runs_as_root_and_times_out(runtime: SimulatedRuntime, events: Events, keypair: KeyPair):
    spec = linux_spec("rcvm", keypair)
    boot(runtime, events, spec)
    result = runtime.run_command(spec.vm_id, ["whoami", "echo err >&2", "exit 3"], timeout=10)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "root\n", "err\n")
    guest = runtime.find("rcvm")[0]
    runtime.add_fault(guest, Fault("sleep 5", hang=True))
    with pytest.raises(TimeoutError):
        runtime.run_command(spec.vm_id, ["sleep 5"], timeout=0.5)
    assert guest.command_log()[-1]["channel"] == "run-command"
    runtime.shutdown(spec.vm_id, force=True)
    events.wait("stopped", spec.vm_id)
    with pytest.raises(GuestNotRunning):
        runtime.run_command(spec.vm_id, ["true"], timeout=5)


def test_custom_data_script_runs_at_first_boot(runtime: SimulatedRuntime, events: Events, keypair: KeyPair):
    import base64

    script = base64.b64encode(b"#!/bin/bash\necho seeded > /etc/seeded\napt-get install -y -q tmux\n").decode()
    addr = boot(runtime, events, linux_spec("cdvm", keypair, custom_data=script))
    client = ssh_client(addr, "azureuser", keypair)
    assert exec_(client, "cat /etc/seeded && dpkg-query -W -f='${Package}\\n' tmux")[1] == "seeded\ntmux\n"


def test_a_port_in_use_fails_the_boot(runtime: SimulatedRuntime, events: Events, keypair: KeyPair):
    spec = linux_spec("busyvm", keypair)
    with socket.socket() as s:
        s.bind((spec.address, SSH_PORT))
        s.listen()
        runtime.boot(spec)
        failed = events.wait("failed", spec.vm_id)
    assert failed[2] == "SimulatedGuestListenFailed" and spec.address in failed[3]


def test_restart_brings_running_guests_back(store_dir: Path, keypair: KeyPair):
    """Guests are persisted: a new runtime on the same store restarts the running ones with their disks."""
    events = Events()
    first = make_runtime(store_dir, events)
    first.start()
    spec = linux_spec("durable", keypair)
    first.boot(spec)
    events.wait("booted", spec.vm_id)
    assert exec_(ssh_client(spec.address, "azureuser", keypair), "sudo touch /etc/survives")[0] == 0
    stopped = linux_spec("sleeper", keypair)
    first.boot(stopped)
    events.wait("booted", stopped.vm_id)
    first.shutdown(stopped.vm_id, force=True)
    events.wait("stopped", stopped.vm_id)
    first.close()

    again = Events()
    second = make_runtime(store_dir, again)
    try:
        second.start()
        second.recover({spec.vm_id: spec})
        again.wait("booted", spec.vm_id)
        client = ssh_client(spec.address, "azureuser", keypair)
        assert exec_(client, "test -f /etc/survives && hostname")[1] == "durable\n"
        assert not second.is_running(stopped.vm_id)
        assert second.capture(stopped.vm_id)["os"]["users"]["azureuser"]
    finally:
        second.close()


def test_destroy_forgets_the_guest(runtime: SimulatedRuntime, events: Events, keypair: KeyPair):
    spec = linux_spec("gonevm", keypair)
    addr = boot(runtime, events, spec)
    runtime.destroy(spec.vm_id)
    runtime.destroy(spec.vm_id)  # idempotent
    assert runtime.find("gonevm") == []
    assert not runtime.is_running(spec.vm_id)
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            socket.create_connection((addr, SSH_PORT), timeout=1).close()
        except OSError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the destroyed guest still listens on its SSH port")
    assert runtime.flush()
    assert runtime.ctx.store.get_setting("guest:" + spec.vm_id.lower()) is None


def test_an_interactive_shell(runtime: SimulatedRuntime, events: Events, keypair: KeyPair):
    addr = boot(runtime, events, linux_spec("ttyvm", keypair))
    chan = ssh_client(addr, "azureuser", keypair).invoke_shell()
    chan.send(b"cd /tmp\nif true; then\necho multi-line\nfi\nexit 5\n")
    assert chan.recv_exit_status() == 5
    out = b""
    while chan.recv_ready():
        out += chan.recv(65536)
    text = out.decode()
    assert "simulated guest" in text.splitlines()[0]
    assert "azureuser@ttyvm:~$ " in text and "azureuser@ttyvm:/tmp$ " in text and "multi-line\r\n" in text
