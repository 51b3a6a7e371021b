"""Simulated Windows guests on a live runtime, driven with pywinrm over WinRM (HTTP/HTTPS, Basic/NTLM)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import winrm
from winrm.exceptions import InvalidCredentialsError

from emulator.guests.simulated.runtime import SimulatedRuntime
from emulator.guests.simulated.session import Fault
from emulator.guests.simulated.windows import COMPLETE, GENERALIZED, SYSPREP_SECONDS_SETTING, UNDEPLOYABLE
from tests.emulator.guests.simulated.conftest import (
    WINDOWS_PASSWORD,
    WINRM_PORT,
    WINRMS_PORT,
    Events,
    make_runtime,
    windows_spec,
)

pytestmark = [pytest.mark.timeout(120), pytest.mark.guests("simulated")]
STATE = r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State"


def session(address: str, *, https: bool = False, transport: str = "basic", user: str = "factoryadmin",
            password: str = WINDOWS_PASSWORD, **kw: object) -> winrm.Session:
    url = f"https://{address}:{WINRMS_PORT}/wsman" if https else f"http://{address}:{WINRM_PORT}/wsman"
    return winrm.Session(url, auth=(user, password), transport=transport, server_cert_validation="ignore", **kw)


def boot(runtime: SimulatedRuntime, events: Events, spec) -> str:  # type: ignore[no-untyped-def]
    runtime.boot(spec)
    events.wait("booted", spec.vm_id)
    return str(spec.address)


@pytest.mark.parametrize(("https", "transport"), [(False, "basic"), (True, "basic"), (False, "ntlm"), (True, "ntlm")])
def test_run_cmd_and_run_ps(runtime: SimulatedRuntime, events: Events, https: bool, transport: str):
    addr = boot(runtime, events, windows_spec(f"win{int(https)}{transport}"))
    s = session(addr, https=https, transport=transport)
    r = s.run_cmd("hostname")
    assert (r.status_code, r.std_out, r.std_err) == (0, f"win{int(https)}{transport}\r\n".encode(), b"")
    r = s.run_ps("$env:COMPUTERNAME; whoami; exit 4")
    assert r.status_code == 4
    assert r.std_out.decode().splitlines() == [f"WIN{int(https)}{transport}".upper(),
                                               f"win{int(https)}{transport}\\factoryadmin"]


def test_wrong_credentials_are_refused(runtime: SimulatedRuntime, events: Events):
    addr = boot(runtime, events, windows_spec("winauth"))
    for transport in ("basic", "ntlm"):
        with pytest.raises(InvalidCredentialsError):
            session(addr, transport=transport, password="not-it").run_cmd("hostname")
    with pytest.raises(InvalidCredentialsError):
        session(addr, user="Administrator").run_cmd("hostname")  # the built-in account is disabled


def test_errors_come_back_as_powershell_reports_them(runtime: SimulatedRuntime, events: Events):
    addr = boot(runtime, events, windows_spec("winerr"))
    r = session(addr).run_ps("Get-Frobnicator")
    assert r.status_code == 1
    assert r.std_err.decode().startswith("Get-Frobnicator : The term 'Get-Frobnicator' is not recognized")
    assert "simulated guest" in r.std_err.decode()
    r = session(addr).run_cmd("frobnicate")
    assert r.status_code == 9009 and b"simulated guest" in r.std_err


def test_sysprep_image_state_progression_and_shutdown(store_dir: Path):
    """/quit leaves the machine up while ImageState goes UNDEPLOYABLE -> GENERALIZE_RESEAL_TO_OOBE, then shutdown."""
    events = Events()
    rt = make_runtime(store_dir, events, time_factor=0.02)  # sysprep's 90 s take 1.8 s, boot 0.9 s
    rt.start()
    try:
        spec = windows_spec("winsysprep")
        addr = boot(rt, events, spec)
        s = session(addr)
        read = f"(Get-ItemProperty {STATE}).ImageState"
        assert s.run_ps(read).std_out == f"{COMPLETE}\r\n".encode()
        r = s.run_ps(r"& $env:SystemRoot\System32\Sysprep\sysprep.exe /generalize /oobe /mode:vm /quit")
        assert (r.status_code, r.std_out) == (0, b"")
        seen = [s.run_ps(read).std_out.decode().strip()]
        deadline = time.time() + 20
        while seen[-1] != GENERALIZED and time.time() < deadline:
            time.sleep(0.2)
            seen.append(s.run_ps(read).std_out.decode().strip())
        assert seen[0] == UNDEPLOYABLE and seen[-1] == GENERALIZED
        assert set(seen) == {UNDEPLOYABLE, GENERALIZED}
        assert rt.is_running(spec.vm_id)  # /quit: still up

        r = s.run_cmd("shutdown", ["/s", "/t", "0"])
        assert r.status_code == 0  # the client gets its answer before the machine goes down
        events.wait("stopped", spec.vm_id)
        with pytest.raises(Exception):  # noqa: B017 - requests' ConnectionError, whatever its wrapping
            session(addr, read_timeout_sec=3, operation_timeout_sec=2).run_cmd("hostname")
        captured = rt.capture(spec.vm_id)
        assert captured["os"]["image_state"] == GENERALIZED
    finally:
        rt.close()


def test_the_sysprep_seconds_setting_makes_sysprep_take_wall_clock_time(runtime: SimulatedRuntime, events: Events):
    """At time factor 0 sysprep is instant, unless ``sysprep_seconds`` says how long it takes."""
    addr = boot(runtime, events, windows_spec("winslowprep"))
    s = session(addr)
    read = f"(Get-ItemProperty {STATE}).ImageState"
    runtime.ctx.store.set_setting(SYSPREP_SECONDS_SETTING, 2.0)
    try:
        began = time.monotonic()
        assert s.run_ps(r"C:\Windows\System32\Sysprep\sysprep.exe /generalize /oobe /mode:vm /quit").status_code == 0
        assert s.run_ps(read).std_out.decode().strip() == UNDEPLOYABLE
        while (state := s.run_ps(read).std_out.decode().strip()) != GENERALIZED and time.monotonic() - began < 20:
            time.sleep(0.1)
        assert state == GENERALIZED and 1.8 <= time.monotonic() - began < 10
    finally:
        runtime.ctx.store.set_setting(SYSPREP_SECONDS_SETTING, 0)


def test_sysprep_shutdown_stops_the_vm_and_its_disk_deploys(runtime: SimulatedRuntime, events: Events):
    spec = windows_spec("winseal")
    addr = boot(runtime, events, spec)
    r = session(addr).run_ps(r"C:\Windows\System32\Sysprep\sysprep.exe /generalize /oobe /mode:vm /shutdown")
    assert r.status_code == 0
    events.wait("stopped", spec.vm_id)
    image = runtime.capture(spec.vm_id)
    new = windows_spec("winfromimage", source=image, username="smokeadmin")
    new_addr = boot(runtime, events, new)
    s = session(new_addr, user="smokeadmin")
    assert s.run_cmd("hostname").std_out == b"winfromimage\r\n"
    assert s.run_ps(f"(Get-ItemProperty {STATE}).ImageState").std_out == f"{COMPLETE}\r\n".encode()


def test_a_generalized_vm_from_an_unsysprepped_disk_times_out(runtime: SimulatedRuntime, events: Events):
    spec = windows_spec("winraw")
    boot(runtime, events, spec)
    runtime.shutdown(spec.vm_id)
    events.wait("stopped", spec.vm_id)
    bad = windows_spec("winbad", source=runtime.capture(spec.vm_id))
    runtime.boot(bad)
    failed = events.wait("failed", bad.vm_id)
    assert failed[2] == "OSProvisioningTimedOut"
    assert "properly prepared (generalized)" in failed[3]
    assert events.of("booted", bad.vm_id) == []


def test_recording_and_faults_over_winrm(runtime: SimulatedRuntime, events: Events):
    addr = boot(runtime, events, windows_spec("winfault"))
    guest = runtime.find("winfault")[0]
    runtime.add_fault(guest, Fault("Install-WindowsFeature*", exit_code=1, stderr="feature store unreachable"))
    runtime.add_fault(guest, Fault("*Start-Sleep -Seconds 999*", hang=True))
    s = session(addr)
    r = s.run_ps("Install-WindowsFeature -Name Web-Server")
    assert r.status_code == 1 and b"feature store unreachable" in r.std_err
    assert s.run_ps("(Get-WindowsFeature Web-Server).Installed").std_out == b"False\r\n"

    # a hung command: Receive answers OperationTimeout faults, which pywinrm retries until we give up
    hung = session(addr, read_timeout_sec=3, operation_timeout_sec=1)
    result: list[object] = []
    shell = hung.protocol.open_shell()
    command = hung.protocol.run_command(shell, "powershell", ["-Command", "Start-Sleep -Seconds 999"])
    worker = threading.Thread(target=lambda: result.append(hung.protocol.get_command_output(shell, command)),
                              daemon=True)
    worker.start()
    worker.join(2.5)
    assert worker.is_alive() and not result
    hung.protocol.cleanup_command(shell, command)  # Signal terminate: the command is cancelled
    hung.protocol.close_shell(shell)

    log = guest.command_log()
    assert [(c["user"], c["channel"], c["command"], c["exit_code"]) for c in log[:2]] == [
        ("factoryadmin", "winrm", "Install-WindowsFeature -Name Web-Server", 1),
        ("factoryadmin", "winrm", "(Get-WindowsFeature Web-Server).Installed", 0)]
    assert log[0]["fault"] == guest.faults[0].id
    deadline = time.time() + 5
    while time.time() < deadline and log[2]["state"] == "running":
        time.sleep(0.05)
        log = guest.command_log()
    assert log[2]["command"] == "powershell -Command Start-Sleep -Seconds 999" and log[2]["state"] == "cancelled"


def test_run_command_powershell_as_system(runtime: SimulatedRuntime, events: Events):
    spec = windows_spec("winrc")
    boot(runtime, events, spec)
    result = runtime.run_command(spec.vm_id, ["whoami", "Write-Output $env:COMPUTERNAME"], timeout=10)
    assert (result.exit_code, result.stdout) == (0, "nt authority\\system\r\nWINRC\r\n")
