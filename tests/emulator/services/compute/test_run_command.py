"""Run Command: scripts in the guest without SSH, answered in Azure's RunCommandResult format."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError

from tests.emulator.services.compute.conftest import Kit, error_of

pytestmark = pytest.mark.guests("simulated")


def _run(kit: Kit, name: str, command: str, script: list[str], **extra):
    body = {"commandId": command, "script": script, **extra}
    return kit.compute.virtual_machines.begin_run_command(kit.group, name, body).result()


@pytest.mark.azure
def test_linux_shell_script_output_format(kit: Kit):
    kit.linux_vm("rc")
    result = _run(kit, "rc", "RunShellScript", ["echo hello", "echo oops >&2"])
    assert len(result.value) == 1
    status = result.value[0]
    assert (status.code, status.level, status.display_status) == (
        "ProvisioningState/succeeded", "Info", "Provisioning succeeded")
    assert status.message == "Enable succeeded: \n[stdout]\nhello\n\n[stderr]\noops\n"


@pytest.mark.azure
def test_a_failing_script_still_succeeds_and_reports_its_streams(kit: Kit):
    kit.linux_vm("rcfail")
    result = _run(kit, "rcfail", "RunShellScript", ["echo before", "exit 3"])
    assert result.value[0].code == "ProvisioningState/succeeded"
    assert result.value[0].message.startswith("Enable succeeded: \n[stdout]\nbefore\n")


def test_parameters_become_variables(kit: Kit):
    kit.linux_vm("rcparams")
    result = _run(kit, "rcparams", "RunShellScript", ['echo "$GREETING $1"'],
                  parameters=[{"name": "GREETING", "value": "hello"}, {"name": "", "value": "world"}])
    assert "[stdout]\nhello world\n" in result.value[0].message


@pytest.mark.azure
def test_windows_powershell_script(kit: Kit):
    kit.windows_vm("rcwin")
    result = _run(kit, "rcwin", "RunPowerShellScript", ["Write-Output 'hello from windows'"])
    codes = [s.code for s in result.value]
    assert codes == ["ComponentStatus/StdOut/succeeded", "ComponentStatus/StdErr/succeeded"]
    assert "hello from windows" in result.value[0].message
    assert result.value[1].message == ""


def test_requires_a_running_vm_and_the_right_command(kit: Kit):
    kit.linux_vm("rcstop")
    with pytest.raises(HttpResponseError) as err:
        _run(kit, "rcstop", "RunPowerShellScript", ["Get-Date"])
    assert (err.value.status_code, err.value.error.code) == (400, "InvalidParameter")
    kit.compute.virtual_machines.begin_power_off(kit.group, "rcstop").result()
    with pytest.raises(ResourceExistsError) as err:
        _run(kit, "rcstop", "RunShellScript", ["true"])
    assert error_of(err.value)[:3] == (
        409, "OperationNotAllowed", "The operation requires the VM to be running (or set to run).")


def test_vms_without_public_ip_run_commands_and_do_not_collide(kit: Kit):
    """Private-only VMs are unreachable over SSH but still boot, side by side, and take Run Command."""
    for name in ("priv1", "priv2"):
        kit.create(name, kit.linux_body(kit.nic(f"{name}-nic", public=False)))
        result = _run(kit, name, "RunShellScript", ["hostname"])
        assert "[stdout]\nbuildvm" in result.value[0].message
    statuses = kit.statuses("priv2")
    assert "PowerState/running" in statuses
