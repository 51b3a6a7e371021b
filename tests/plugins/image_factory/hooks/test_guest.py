"""The guest hooks against simulated guests of the session's local Azure, over real SSH and WinRM.

Each VM is created with the SDK directly (a tiny helper below); its host key is read through
Azure's runCommand, as the pipeline does, and pinned.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from image_factory.credentials import SshKeyPair, ssh_key_pair, windows_password
from image_factory.guest_commands import linux_generalize_command
from image_factory.hooks.guest import (
    GuestScriptError,
    GuestSSHHook,
    GuestWinRMHook,
    HostKeyMismatchError,
    bash_payload,
    powershell_literal,
)

SECRET = "test-build-secret-0123456789"
DEBIAN = {"publisher": "Debian", "offer": "debian-12", "sku": "12", "version": "latest"}
WINDOWS = {
    "publisher": "MicrosoftWindowsServer",
    "offer": "WindowsServer",
    "sku": "2022-datacenter-azure-edition",
    "version": "latest",
}
INJECTION = "$(touch /tmp/pwned); rm -rf / `id` ' \" ; $HOME \\"


@dataclass
class Guest:
    address: str
    vm_name: str


def create_vm(
    arm: Any, group: str, location: str, name: str, *, image: dict[str, str], os_profile: dict[str, Any], size: str
) -> Guest:
    """A VM with a public IP in its own network, through the SDK (what the network/compute hooks will do)."""
    net = arm.network
    net.virtual_networks.begin_create_or_update(
        group,
        f"{name}-vnet",
        {
            "location": location,
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                "subnets": [{"name": "default", "properties": {"addressPrefix": "10.0.0.0/24"}}],
            },
        },
    ).result()
    subnet_id = net.subnets.get(group, f"{name}-vnet", "default").id
    pip = net.public_ip_addresses.begin_create_or_update(
        group,
        f"{name}-ip",
        {"location": location, "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}},
    ).result()
    nic = net.network_interfaces.begin_create_or_update(
        group,
        f"{name}-nic",
        {
            "location": location,
            "properties": {
                "ipConfigurations": [
                    {
                        "name": "ipconfig1",
                        "properties": {"subnet": {"id": subnet_id}, "publicIPAddress": {"id": pip.id}},
                    }
                ]
            },
        },
    ).result()
    arm.compute.virtual_machines.begin_create_or_update(
        group,
        name,
        {
            "location": location,
            "properties": {
                "hardwareProfile": {"vmSize": size},
                "storageProfile": {"imageReference": image, "osDisk": {"createOption": "FromImage"}},
                "osProfile": os_profile,
                "networkProfile": {"networkInterfaces": [{"id": nic.id, "properties": {"primary": True}}]},
            },
        },
    ).result()
    address = net.public_ip_addresses.get(group, f"{name}-ip").ip_address
    return Guest(address, name)


def wait_for_power_state(arm: Any, group: str, name: str, state: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        codes = [s.code for s in arm.compute.virtual_machines.instance_view(group, name).statuses]
        power = next((c for c in codes if c.startswith("PowerState/")), "")
        if power == state or time.monotonic() > deadline:
            return power
        time.sleep(0.2)


def host_key_via_run_command(arm: Any, group: str, name: str) -> str:
    poller = arm.compute.virtual_machines.begin_run_command(
        group, name, {"commandId": "RunShellScript", "script": ["cat /etc/ssh/ssh_host_ed25519_key.pub"]}
    )
    message = poller.result().value[0].message
    return next(line.strip() for line in message.splitlines() if line.startswith("ssh-ed25519 "))


def logged_text(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    """Everything logged: stdlib records (paramiko, pywinrm) and Airflow's structlog output (hooks)."""
    out, err = capfd.readouterr()
    return caplog.text + out + err


# fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def guest_group(arm: Any) -> Iterator[str]:
    name = f"test-guest-{uuid.uuid4().hex[:8]}"
    arm.resources.resource_groups.create_or_update(name, {"location": "westeurope", "tags": {"factory": "tests"}})
    yield name
    arm.resources.resource_groups.begin_delete(name).result()


@pytest.fixture(scope="module")
def keys() -> SshKeyPair:
    return ssh_key_pair(SECRET, "guest-hook-tests")


@pytest.fixture(scope="module")
def linux(arm: Any, guest_group: str, keys: SshKeyPair) -> tuple[Guest, str]:
    guest = create_vm(
        arm,
        guest_group,
        "westeurope",
        "linuxvm",
        image=DEBIAN,
        size="Standard_B2s",
        os_profile={
            "computerName": "buildvm",
            "adminUsername": "azureuser",
            "linuxConfiguration": {
                "disablePasswordAuthentication": True,
                "ssh": {
                    "publicKeys": [{"path": "/home/azureuser/.ssh/authorized_keys", "keyData": keys.public_openssh}]
                },
            },
        },
    )
    return guest, host_key_via_run_command(arm, guest_group, guest.vm_name)


@pytest.fixture
def ssh(linux: tuple[Guest, str], keys: SshKeyPair) -> Iterator[GuestSSHHook]:
    guest, host_key = linux
    hook = GuestSSHHook(guest.address, "azureuser", keys, host_key)
    yield hook
    hook.close()


@pytest.fixture(scope="module")
def password() -> str:
    return windows_password(SECRET, "guest-hook-tests")


@pytest.fixture(scope="module")
def windows(arm: Any, guest_group: str, password: str) -> Guest:
    return create_vm(
        arm,
        guest_group,
        "westeurope",
        "winvm",
        image=WINDOWS,
        size="Standard_D2s_v5",
        os_profile={"computerName": "winbuild", "adminUsername": "factoryadmin", "adminPassword": password},
    )


@pytest.fixture
def winrm(windows: Guest, password: str) -> GuestWinRMHook:
    return GuestWinRMHook(windows.address, "factoryadmin", password, local_azure=True)


# pure -----------------------------------------------------------------------------------------------
def test_bad_param_names_are_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="'BAD NAME'"):
        bash_payload("true", {"BAD NAME": "x"})
    with pytest.raises(ValueError, match="'1X'"):
        bash_payload("true", {"1X": "x"})


def test_powershell_literal_doubles_every_kind_of_single_quote() -> None:
    assert powershell_literal("it's \u2019x\u2019 $env:PATH") == "'it''s \u2019\u2019x\u2019\u2019 $env:PATH'"


def test_winrm_validates_certificates_unless_told_it_is_the_local_azure() -> None:
    assert GuestWinRMHook("203.0.113.5", "admin", "Secret-Pa55word!").server_cert_validation == "validate"
    local = GuestWinRMHook("203.0.113.5", "admin", "Secret-Pa55word!", local_azure=True)
    assert (local.server_cert_validation, local.transport, local.endpoint) == (
        "ignore",
        "ntlm",
        "https://203.0.113.5:5986/wsman",
    )
    assert (
        GuestWinRMHook.sysprep_command() == r"C:\Windows\System32\Sysprep\sysprep.exe /generalize /oobe /quit /mode:vm"
    )


# Linux ----------------------------------------------------------------------------------------------
def test_pinned_host_key_is_accepted_and_script_output_returned(ssh: GuestSSHHook) -> None:
    result = ssh.run_script("hello", "echo hello from $(hostname)\necho to-stderr >&2\nid -u", sudo=True)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["hello from buildvm", "0"]
    assert result.stderr.strip() == "to-stderr"
    assert result.name == "hello"


def test_script_without_sudo_runs_as_the_user(ssh: GuestSSHHook) -> None:
    assert ssh.run_script("whoami", "whoami", sudo=False).stdout.strip() == "azureuser"


def test_the_machines_ssh_setup_is_ignored(
    linux: tuple[Guest, str], keys: SshKeyPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stale known_hosts entry for the address and an ssh config naming other keys change nothing."""
    guest, host_key = linux
    dot_ssh = tmp_path / ".ssh"
    dot_ssh.mkdir()
    stale = f"{guest.address} {ssh_key_pair(SECRET, 'previous-vm').public_openssh}\n"
    (dot_ssh / "known_hosts").write_text(stale)
    (dot_ssh / "config").write_text(f"Host *\n  IdentityFile {dot_ssh / 'missing_key'}\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    hook = GuestSSHHook(guest.address, "azureuser", keys, host_key)
    try:
        assert hook.run_script("ok", "echo ok", sudo=False).stdout == "ok\n"
    finally:
        hook.close()
    assert (dot_ssh / "known_hosts").read_text() == stale
    assert sorted(p.name for p in dot_ssh.iterdir()) == ["config", "known_hosts"]


def test_wrong_pinned_host_key_is_rejected_naming_host_and_fingerprints(
    linux: tuple[Guest, str], keys: SshKeyPair
) -> None:
    guest, real_key = linux
    impostor = ssh_key_pair(SECRET, "someone-else").public_openssh
    hook = GuestSSHHook(guest.address, "azureuser", keys, impostor)
    with pytest.raises(HostKeyMismatchError) as caught:
        hook.run_script("never", "touch /tmp/should-not-run")
    message = str(caught.value)
    assert guest.address in message
    assert ssh_key_pair(SECRET, "someone-else").fingerprint in message  # expected (pinned)
    real_fingerprint = SshKeyPair("", real_key).fingerprint
    assert real_fingerprint in message  # presented by the server


def test_failing_script_raises_with_name_exit_code_and_tail(ssh: GuestSSHHook) -> None:
    script = "for i in $(seq 1 30); do echo line-$i; done\necho boom >&2\nexit 7"
    with pytest.raises(GuestScriptError) as caught:
        ssh.run_script("install-agent", script)
    error = caught.value
    assert (error.script, error.exit_code) == ("install-agent", 7)
    message = str(error)
    assert "'install-agent'" in message and "code 7" in message
    assert "line-30" in message and "boom" in message
    assert "line-5\n" not in message  # only the tail, not the whole output


def test_failing_script_with_check_false_returns_the_code(ssh: GuestSSHHook) -> None:
    assert ssh.run_script("soft", "exit 3", check=False).exit_code == 3


@pytest.mark.parametrize("payload", [INJECTION, "$(touch /tmp/pwned); rm -rf /"])
def test_params_arrive_verbatim_and_are_never_executed(ssh: GuestSSHHook, payload: str) -> None:
    ssh.run_script("clean", "rm -f /tmp/pwned")
    result = ssh.run_script(
        "echo-param", 'printf "%s" "$PAYLOAD"\ntest ! -e /tmp/pwned && echo SAFE >&2', params={"PAYLOAD": payload}
    )
    assert result.stdout == payload
    assert "SAFE" in result.stderr
    assert ssh.run_script("check", "test -e /tmp/pwned && echo yes || echo no").stdout.strip() == "no"


def test_bad_param_name_fails_before_connecting(linux: tuple[Guest, str], keys: SshKeyPair) -> None:
    guest, host_key = linux
    hook = GuestSSHHook(guest.address, "azureuser", keys, host_key)
    with pytest.raises(ValueError, match="'X;rm'"):
        hook.run_script("bad", "true", params={"X;rm": "v"})
    assert hook.client is None


def test_package_manifest_lists_debian_packages(ssh: GuestSSHHook) -> None:
    manifest = dict(ssh.package_manifest())
    assert {"bash", "openssh-server", "coreutils"} <= manifest.keys()
    assert all(version for version in manifest.values())


@pytest.mark.guests("simulated")
def test_pending_upgrades_are_what_apt_offers_after_refreshing_its_lists(ssh: GuestSSHHook) -> None:
    pending = ssh.pending_upgrades()
    listed = ssh.run_script("list", "apt list --upgradable 2>/dev/null", sudo=False).stdout.splitlines()
    assert pending and sorted(pending) == sorted((line.split("/")[0], line.split()[1]) for line in listed)
    installed = dict(ssh.package_manifest())
    assert all(name in installed and installed[name] != version for name, version in pending)


@pytest.mark.guests("simulated")
@pytest.mark.parametrize(("exit_code", "stderr", "words"), [
    (100, "E: Could not connect to debian-archive.trafficmanager.net", "exited 100: E: Could not connect"),
    (0, "W: Failed to fetch http://debian-archive.trafficmanager.net/debian/dists/bookworm/InRelease  Temporary "
        "failure resolving\nW: Some index files failed to download.", "exited 0: W: Failed to fetch"),
])
def test_pending_upgrades_refuse_to_answer_when_no_mirror_was_reached(
    ssh: GuestSSHHook, linux: tuple[Guest, str], local_azure: Any, exit_code: int, stderr: str, words: str
) -> None:
    guest = f"guests/{linux[0].address}"
    local_azure.ops("POST", f"{guest}/faults", {"match": "apt-get update*", "exit_code": exit_code, "stderr": stderr})
    try:
        with pytest.raises(GuestScriptError, match="did not refresh the package lists") as info:
            ssh.pending_upgrades()
    finally:
        local_azure.ops("DELETE", f"{guest}/faults")
    assert words in str(info.value)
    assert ssh.pending_upgrades()  # the mirror is back


def test_output_is_streamed_to_the_log_without_the_private_key(
    ssh: GuestSSHHook, keys: SshKeyPair, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    key_body = [line for line in keys.private_openssh.splitlines() if "PRIVATE KEY" not in line]
    with caplog.at_level(logging.DEBUG):
        result = ssh.run_script("leaky", 'echo "streamed-line"\necho "$KEY_LINE"', params={"KEY_LINE": key_body[0]})
    assert key_body[0] in result.stdout  # the guest really printed it...
    logs = logged_text(caplog, capfd)
    assert "[leaky] streamed-line" in logs  # ...the log has the output...
    assert all(line not in logs for line in key_body)  # ...but never the key
    assert keys.private_openssh not in repr(ssh)


def test_generalize_command_counts_the_dropped_session_as_success(arm: Any, guest_group: str, keys: SshKeyPair) -> None:
    guest = create_vm(
        arm,
        guest_group,
        "westeurope",
        "genvm",
        image=DEBIAN,
        size="Standard_B2s",
        os_profile={
            "computerName": "genvm",
            "adminUsername": "azureuser",
            "linuxConfiguration": {
                "disablePasswordAuthentication": True,
                "ssh": {
                    "publicKeys": [{"path": "/home/azureuser/.ssh/authorized_keys", "keyData": keys.public_openssh}]
                },
            },
        },
    )
    hook = GuestSSHHook(guest.address, "azureuser", keys, host_key_via_run_command(arm, guest_group, "genvm"))
    seen = hook.run_detached_shutdown(linux_generalize_command())
    assert seen.started
    assert seen.exit_code in (None, 0)
    assert wait_for_power_state(arm, guest_group, "genvm", "PowerState/stopped") == "PowerState/stopped"


# Windows ---------------------------------------------------------------------------------------------
def test_winrm_script_output_params_and_masking(
    winrm: GuestWinRMHook, password: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.DEBUG):
        result = winrm.run_script(
            "hello",
            'Write-Output "value=$env:VALUE"\nWrite-Output $env:PW',
            {"VALUE": "it's $(Get-Date) `n", "PW": password},
        )
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["value=it's $(Get-Date) `n", password]
    logs = logged_text(caplog, capfd)
    assert "value=it's" in logs
    assert password not in logs


def test_winrm_failing_script_raises_with_name_exit_code_and_tail(winrm: GuestWinRMHook) -> None:
    with pytest.raises(GuestScriptError) as caught:
        winrm.run_script("configure-iis", "Write-Output 'before failing'\nexit 5")
    assert caught.value.exit_code == 5
    assert "'configure-iis'" in str(caught.value) and "code 5" in str(caught.value)
    assert "before failing" in str(caught.value)


def test_winrm_package_manifest_lists_updates(winrm: GuestWinRMHook) -> None:
    manifest = dict(winrm.package_manifest())
    assert any(name.startswith("KB") for name in manifest)
    assert all(version for version in manifest.values())  # programs have versions, updates say "hotfix"


def test_image_state_moves_to_generalized_after_sysprep(arm: Any, guest_group: str, password: str) -> None:
    guest = create_vm(
        arm,
        guest_group,
        "westeurope",
        "sysprepvm",
        image=WINDOWS,
        size="Standard_D2s_v5",
        os_profile={"computerName": "sysprepvm", "adminUsername": "factoryadmin", "adminPassword": password},
    )
    winrm = GuestWinRMHook(guest.address, "factoryadmin", password, local_azure=True)
    assert winrm.image_state() == "IMAGE_STATE_COMPLETE"
    winrm.run_script("sysprep", winrm.sysprep_command())
    deadline = time.monotonic() + 60
    state = winrm.image_state()
    while state != "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE" and time.monotonic() < deadline:
        assert state == "IMAGE_STATE_UNDEPLOYABLE"
        time.sleep(0.2)
        state = winrm.image_state()
    assert state == "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
