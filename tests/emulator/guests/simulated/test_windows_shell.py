"""The simulated Windows guest without a server: PowerShell and cmd.exe subsets, sysprep's ImageState machine."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable

import pytest

from emulator.guests.simulated import disk
from emulator.guests.simulated.session import Buffer, FakeHooks
from emulator.guests.simulated.windows import (
    COMPLETE,
    GENERALIZED,
    UNDEPLOYABLE,
    SysprepError,
    WindowsProvisioning,
    WindowsSystem,
)
from emulator.guests.simulated.winshell import run_windows

STATE = r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State"
SYSPREP = r"C:\Windows\System32\Sysprep\sysprep.exe"


class SteppedHooks(FakeHooks):
    """Timed work waits until the test releases it, so intermediate states can be observed."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[tuple[Callable[[], None], threading.Event]] = []

    def later(self, azure_seconds: float, fn: Callable[[], None], *,
              override: str | None = None) -> threading.Event:
        done = threading.Event()
        self.pending.append((fn, done))
        return done

    def step(self) -> None:
        fn, done = self.pending.pop(0)
        fn()
        done.set()


@pytest.fixture
def win() -> WindowsSystem:
    system = WindowsSystem(disk.base_disk("Windows", "2022")["os"])
    system.first_boot(WindowsProvisioning("vm-w", "winbuild", "factoryadmin", "Local-Azure-Pa55!"))
    system.boot()
    return system


def cmd(system: WindowsSystem, hooks: FakeHooks, line: str, user: str = "factoryadmin") -> tuple[int, str, str]:
    out, err = Buffer(), Buffer()
    return run_windows(system, hooks, line, user=user, out=out, err=err), out.getvalue(), err.getvalue()


def ps(system: WindowsSystem, hooks: FakeHooks, script: str, user: str = "factoryadmin") -> tuple[int, str, str]:
    """What pywinrm's run_ps sends: powershell -encodedcommand <base64 of UTF-16LE>."""
    encoded = base64.b64encode(script.encode("utf-16-le")).decode()
    return cmd(system, hooks, f"powershell -encodedcommand {encoded}", user)


def test_first_boot_specializes_a_sysprepped_image(win: WindowsSystem):
    assert win.image_state == COMPLETE
    assert win.computer_name == "winbuild"
    assert win.is_admin("factoryadmin") and win.check_password("FactoryAdmin", "Local-Azure-Pa55!")
    assert win.os["machine_sid"].startswith("S-1-5-21-")


def test_identity_commands(win: WindowsSystem, hooks: FakeHooks):
    assert cmd(win, hooks, "hostname") == (0, "winbuild\r\n", "")
    assert cmd(win, hooks, "whoami")[1] == "winbuild\\factoryadmin\r\n"
    assert cmd(win, hooks, "echo %COMPUTERNAME%")[1] == "WINBUILD\r\n"
    assert ps(win, hooks, "$env:COMPUTERNAME; hostname; whoami")[1] == "WINBUILD\r\nwinbuild\r\nwinbuild\\factoryadmin\r\n"
    assert ps(win, hooks, "Write-Output ('{0}-{1}' -f 1,2) 2>$null; Write-Output \"x=$(1+2)\"")[1].endswith("x=3\r\n")


def test_image_state_in_the_forms_scripts_read_it(win: WindowsSystem, hooks: FakeHooks):
    code, out, _ = ps(win, hooks, f"Get-ItemProperty {STATE}")
    assert code == 0 and "ImageState   : IMAGE_STATE_COMPLETE" in out
    assert ps(win, hooks, f"(Get-ItemProperty -Path '{STATE}').ImageState")[1] == "IMAGE_STATE_COMPLETE\r\n"
    assert ps(win, hooks, f"Get-ItemProperty {STATE} | Select-Object -ExpandProperty ImageState")[1] == \
        "IMAGE_STATE_COMPLETE\r\n"
    assert ps(win, hooks, f"Get-ItemPropertyValue -Path {STATE} -Name ImageState")[1] == "IMAGE_STATE_COMPLETE\r\n"
    code, out, _ = cmd(win, hooks, r"reg query HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State /v ImageState")
    assert code == 0 and "ImageState    REG_SZ    IMAGE_STATE_COMPLETE" in out


def test_sysprep_progresses_image_state_like_the_real_one(win: WindowsSystem):
    hooks = SteppedHooks()
    code, out, err = ps(win, hooks, f"& {SYSPREP} /generalize /oobe /mode:vm /quit")
    assert (code, out, err) == (0, "", "")  # a GUI program: it returns at once and works on
    assert win.image_state == UNDEPLOYABLE
    assert ps(win, hooks, f"(Get-ItemProperty {STATE}).ImageState")[1] == f"{UNDEPLOYABLE}\r\n"
    hooks.step()
    assert win.image_state == GENERALIZED
    assert win.os["machine_sid"] is None
    assert hooks.actions == []  # /quit: the machine stays up
    log = ps(win, hooks, r"Get-Content C:\Windows\System32\Sysprep\Panther\setupact.log -Raw")[1]
    assert "Sysprep /generalize /oobe /mode:vm /quit" in log


def test_sysprep_shutdown_powers_off_when_done(win: WindowsSystem):
    hooks = SteppedHooks()
    code, _, _ = cmd(win, hooks, f"{SYSPREP} /oobe /generalize /mode:vm /shutdown /quiet")
    assert code == 0 and hooks.actions == []
    hooks.step()
    assert hooks.actions == ["poweroff"] and win.image_state == GENERALIZED


def test_sysprep_start_process_wait_blocks_until_done(win: WindowsSystem, hooks: FakeHooks):
    code, _, _ = ps(win, hooks, f"Start-Process -FilePath {SYSPREP} -ArgumentList '/generalize','/oobe','/quit' -Wait")
    assert code == 0 and win.image_state == GENERALIZED


def test_sysprep_refuses_a_machine_already_generalized(win: WindowsSystem):
    win.sysprep_begin(generalize=True, oobe=True)
    win.sysprep_finish(generalize=True, oobe=True)
    with pytest.raises(SysprepError, match="not able to validate"):
        win.sysprep_begin(generalize=True, oobe=True)


def test_packer_style_polling_loop(win: WindowsSystem, hooks: FakeHooks):
    script = ("& $env:SystemRoot\\System32\\Sysprep\\Sysprep.exe /oobe /generalize /quiet /quit /mode:vm\n"
              "while($true) { $imageState = Get-ItemProperty HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\"
              "Setup\\State | Select ImageState; if($imageState.ImageState -ne 'IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE')"
              " { Write-Output $imageState.ImageState; Start-Sleep -s 10 } else { break } }\n'sealed'")
    assert ps(win, hooks, script) == (0, "sealed\r\n", "")


def test_exit_codes_and_errors(win: WindowsSystem, hooks: FakeHooks):
    assert ps(win, hooks, "Write-Output 'hello'; exit 7")[:2] == (7, "hello\r\n")
    code, out, err = ps(win, hooks, "Invoke-Frobnicator -Now")
    assert code == 1 and out == ""
    assert err.startswith("#< CLIXML\r\n") and "simulated guest" in err and "Invoke-Frobnicator" in err
    # a failing statement that is not the last one does not decide the exit code ...
    assert ps(win, hooks, "Invoke-Frobnicator; Write-Output after")[:2] == (0, "after\r\n")
    # ... unless errors are terminating
    assert ps(win, hooks, "$ErrorActionPreference = 'Stop'; Invoke-Frobnicator; Write-Output after")[:2] == (1, "")
    assert ps(win, hooks, "try { throw 'boom' } catch { Write-Output \"caught $($_.Exception.Message)\" }")[1] == \
        "caught boom\r\n"
    code, _, err = cmd(win, hooks, "frobnicate.exe /now")
    assert code == 9009 and "is not recognized as an internal or external command" in err
    code, _, err = cmd(win, hooks, "powershell -Command \"Get-Nothing\"")
    assert code == 1 and not err.startswith("#< CLIXML")


def test_features_updates_and_services(win: WindowsSystem, hooks: FakeHooks):
    code, out, _ = ps(win, hooks, "Install-WindowsFeature -Name Web-Server -IncludeManagementTools")
    assert code == 0 and "True    No             Success   {Web Server (IIS)}" in out
    assert "Web-Server" in win.features
    assert ps(win, hooks, "(Get-WindowsFeature Web-Server).Installed; (Get-Service W3SVC).Status")[1] == \
        "True\r\nRunning\r\n"
    hotfixes = ps(win, hooks, "Get-HotFix | Select-Object -ExpandProperty HotFixID")[1].split()
    assert hotfixes == [h["HotFixID"] for h in win.hotfixes]
    code, _, err = ps(win, hooks, "Install-WindowsUpdate -AcceptAll")
    assert code == 1 and "not recognized" in err  # PSWindowsUpdate is not in the image
    later = FakeHooks(serial=win.os["built_serial"] + 2)
    code, out, _ = ps(win, later, "Install-Module PSWindowsUpdate -Force; Install-WindowsUpdate -AcceptAll -IgnoreReboot")
    assert code == 0 and "Installed" in out
    assert len(win.hotfixes) == 4


def test_power_needs_an_administrator(win: WindowsSystem, hooks: FakeHooks):
    assert ps(win, hooks, "Stop-Computer -Force")[0] == 0
    assert cmd(win, hooks, "shutdown /r /t 0")[0] == 0
    assert hooks.actions == ["poweroff", "reboot"]
    win.users["viewer"] = {"enabled": True, "admin": False, "password": None, "nt_hash": None}
    code, _, err = cmd(win, hooks, "shutdown /s /t 0", user="viewer")
    assert code == 5 and "Access is denied" in err
    assert hooks.actions == ["poweroff", "reboot"]


def test_generalized_boot_needs_a_sysprepped_disk():
    system = WindowsSystem(disk.base_disk("Windows", "2022")["os"])
    system.first_boot(WindowsProvisioning("vm-1", "first", "admin1", "Pa55-word-1!"))
    assert not system.can_specialize()  # deployed, never sysprepped: OOBE would never finish
    with pytest.raises(SysprepError):
        system.first_boot(WindowsProvisioning("vm-2", "second", "admin2", "Pa55-word-2!"))
