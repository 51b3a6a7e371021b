"""The NoCloud seed a generalized image provisions from: osProfile as cloud-init meta-data and user-data.

On Azure, cloud-init reads osProfile from the platform (ovf-env.xml) and customData is the
user-data. Under QEMU we have only NoCloud, so one seed carries both: our #cloud-config (host
name, admin user, keys, sudo) and, as a second MIME part merged into it, the decoded customData.

Two traps (LOCAL-GUEST-NOTES.md): ``waagent -deprovision+user`` only deletes the user that
``/var/lib/waagent/ovf-env.xml`` names, so the seed writes one as Azure's datasource would; and
RSA/DSA host keys cost ~30 s of boot under TCG, so only ed25519 and ecdsa keys are generated.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import subprocess
import tempfile
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml

from emulator.guests.base import GuestSpec

VOLUME_ID = "cidata"  # NoCloud finds its seed by this label
OVF_ENV = "/var/lib/waagent/ovf-env.xml"
CUSTOM_DATA = "/var/lib/waagent/CustomData"
# customData merged into ours: our keys win, lists (write_files, runcmd, packages ...) append
CUSTOM_DATA_MERGE = "list(append)+dict(no_replace,recurse_list)+str()"
_CLOUD_INIT_TYPES = {  # first line of a user-data document -> the MIME type cloud-init expects
    "#cloud-config": "cloud-config",
    "#!": "x-shellscript",
    "#include": "x-include-url",
    "#cloud-boothook": "cloud-boothook",
    "#part-handler": "part-handler",
    "## template: jinja": "jinja2",
}


def instance_id(spec: GuestSpec) -> str:
    """Stable per VM: cloud-init runs its per-instance modules once, as on Azure's first boot."""
    return "iid-" + spec.vm_id.rstrip("/").rsplit("/", 1)[-1].lower() + "-" + _short_hash(spec.vm_id)


def _short_hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.lower().encode()).hexdigest()[:12]


def meta_data(spec: GuestSpec) -> str:
    return yaml.safe_dump({"instance-id": instance_id(spec), "local-hostname": spec.computer_name}, sort_keys=False)


def ovf_env(spec: GuestSpec) -> str:
    """The minimal ovf-env.xml waagent reads to know which user ``-deprovision+user`` removes."""
    # never the password: Azure's agent also blanks it in the copy it keeps on disk
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" '
        'xmlns:oe="http://schemas.dmtf.org/ovf/environment/1" xmlns:wa="http://schemas.microsoft.com/windowsazure" '
        'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">\n'
        '  <wa:ProvisioningSection>\n'
        '    <wa:Version>1.0</wa:Version>\n'
        '    <LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure" '
        'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">\n'
        '      <ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType>\n'
        f'      <HostName>{escape(spec.computer_name or "")}</HostName>\n'
        f'      <UserName>{escape(spec.admin_username or "")}</UserName>\n'
        f'      <DisableSshPasswordAuthentication>{"false" if spec.admin_password else "true"}'
        '</DisableSshPasswordAuthentication>\n'
        '    </LinuxProvisioningConfigurationSet>\n'
        '  </wa:ProvisioningSection>\n'
        '  <wa:PlatformSettingsSection>\n'  # waagent 2.9 refuses an ovf-env.xml without it
        '    <wa:Version>1.0</wa:Version>\n'
        '    <PlatformSettings xmlns="http://schemas.microsoft.com/windowsazure" '
        'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">\n'
        '      <KmsServerHostname>kms.core.windows.net</KmsServerHostname>\n'
        '      <ProvisionGuestAgent>true</ProvisionGuestAgent>\n'
        '    </PlatformSettings>\n'
        '  </wa:PlatformSettingsSection>\n'
        '</Environment>\n'
    )


def decode_custom_data(custom_data: str | None) -> bytes | None:
    """osProfile.customData is base64; Azure rejects anything else, so a bad value is an error here too."""
    if not custom_data:
        return None
    try:
        return base64.b64decode(custom_data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"customData is not valid base64: {exc}") from None


def cloud_config(spec: GuestSpec) -> dict[str, Any]:
    """Our #cloud-config: the osProfile of a generalized image's first boot."""
    user: dict[str, Any] = {
        "name": spec.admin_username,
        "groups": ["sudo"],
        "sudo": "ALL=(ALL) NOPASSWD:ALL",  # what Azure's provisioning grants the admin user
        "shell": "/bin/bash",
        "lock_passwd": not spec.admin_password,
    }
    if spec.ssh_public_keys:
        user["ssh_authorized_keys"] = list(spec.ssh_public_keys)
    cfg: dict[str, Any] = {
        "hostname": spec.computer_name,
        "preserve_hostname": False,
        "users": [user] if spec.admin_username else [],
        "ssh_genkeytypes": ["ed25519", "ecdsa"],
        "ssh_deletekeys": True,
        "ssh_pwauth": bool(spec.admin_password),
        "disable_root": True,
        "write_files": [{"path": OVF_ENV, "permissions": "0600", "owner": "root:root", "content": ovf_env(spec)}],
    }
    if spec.admin_password and spec.admin_username:
        cfg["chpasswd"] = {"expire": False,
                           "users": [{"name": spec.admin_username, "password": spec.admin_password, "type": "text"}]}
    raw = decode_custom_data(spec.custom_data)
    if raw is not None:  # Azure's datasource leaves the decoded customData here for the agent and scripts
        cfg["write_files"].append({"path": CUSTOM_DATA, "permissions": "0600", "owner": "root:root",
                                   "encoding": "b64", "content": base64.b64encode(raw).decode()})
    return cfg


def custom_data_part(raw: bytes) -> MIMEText | None:
    """customData as a user-data part when cloud-init would act on it on Azure (else it is only a file)."""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return None  # gzip or binary: Azure hands it to cloud-init undecoded; out of scope here
    first = text.lstrip().split("\n", 1)[0].strip()
    for prefix, subtype in _CLOUD_INIT_TYPES.items():
        if first.startswith(prefix):
            part = MIMEText(text, subtype, "utf-8")
            part.add_header("Content-Disposition", "attachment", filename="customdata")
            if subtype == "cloud-config":
                part.add_header("Merge-Type", CUSTOM_DATA_MERGE)
            return part
    return None


def user_data(spec: GuestSpec) -> str:
    """A plain #cloud-config, or MIME multipart with customData merged/attached after ours."""
    ours = "#cloud-config\n" + yaml.safe_dump(cloud_config(spec), sort_keys=False, width=4096)
    raw = decode_custom_data(spec.custom_data)
    extra = custom_data_part(raw) if raw is not None else None
    if extra is None:
        return ours
    msg = MIMEMultipart()
    first = MIMEText(ours, "cloud-config", "utf-8")
    first.add_header("Content-Disposition", "attachment", filename="osprofile")
    msg.attach(first)
    msg.attach(extra)
    return msg.as_string()


def iso_tool() -> list[str]:
    """genisoimage, else xorriso in its mkisofs mode."""
    if shutil.which("genisoimage"):
        return ["genisoimage"]
    if shutil.which("xorriso"):
        return ["xorriso", "-as", "mkisofs"]
    raise RuntimeError("building a NoCloud seed needs genisoimage or xorriso (apt-get install genisoimage)")


def build_seed(spec: GuestSpec, path: str | os.PathLike[str]) -> Path:
    """Write the seed ISO (0600: it may hold the admin password) and return its path."""
    if not spec.computer_name:
        raise ValueError("a seed is only for a generalized image's first boot (computer_name is set)")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        os.chmod(tmp, 0o700)
        Path(tmp, "meta-data").write_text(meta_data(spec))
        Path(tmp, "user-data").write_text(user_data(spec))
        partial = target.with_name(target.name + ".part")
        subprocess.run([*iso_tool(), "-quiet", "-output", str(partial), "-volid", VOLUME_ID, "-joliet", "-rock",
                        str(Path(tmp, "user-data")), str(Path(tmp, "meta-data"))],
                       check=True, capture_output=True, timeout=60)
        os.chmod(partial, 0o600)
        partial.replace(target)
    return target
