"""The request rules of a VM PUT: names, osProfile, credentials and custom data, with Azure's wording.

Pure validation: takes the request's pieces, returns what goes on the wire and what stays
secret, raises ``InvalidParameter`` the way the Compute resource provider does.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from typing import Any

from emulator.core.errors import ArmError, InvalidParameter

ENTITY_RULE_80 = r"^[^_\W][\w-._]{0,79}(?<![-.])$"
ENTITY_RULE_64 = r"^[^_\W][\w-._]{0,63}(?<![-.])$"

WINDOWS_NAME_CHARS = set("`~!@#$%^&*()=+_[]{}\\|;:.'\",<>/? ")
LINUX_NAME_CHARS = set("`~!@#$%^&*()=+_[]{}\\|;:'\",<>/? ")
WINDOWS_COMPUTER_NAME = (
    "Windows computer name cannot be more than 15 characters long, be entirely numeric, or contain the following "
    "characters: ` ~ ! @ # $ % ^ & * ( ) = + _ [ ] { } \\ | ; : . ' \" , < > / ?."
)
LINUX_COMPUTER_NAME = (
    "Linux host name cannot exceed 64 characters in length or contain the following characters: "
    "` ~ ! @ # $ % ^ & * ( ) = + _ [ ] { } \\ | ; : ' \" , < > / ?."
)
# Azure's documented list of admin user names it refuses.
RESERVED_USERNAMES = frozenset({
    "administrator", "admin", "user", "user1", "test", "user2", "test1", "user3", "admin1", "1", "123", "a",
    "actuser", "adm", "admin2", "aspnet", "backup", "console", "david", "guest", "john", "owner", "root", "server",
    "sql", "support", "support_388945a0", "sys", "test2", "test3", "user4", "user5",
})
# Passwords Azure refuses even though they meet the complexity rules.
RESERVED_PASSWORDS = frozenset({
    "abc@123", "iloveyou!", "p@$$w0rd", "p@ssw0rd", "p@ssword123", "pa$$word", "pass@word1", "password!",
    "password1", "password22",
})
SSH_KEY_TYPES = ("ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")
MAX_CUSTOM_DATA = 87380


def entity_name(value: str, target: str, rule: str = ENTITY_RULE_80) -> None:
    """Compute's generic name rule, reported with the (.NET) regex Azure quotes."""
    python_rule = rule.replace(r"[\w-._]", r"[\w._-]")
    if not re.fullmatch(python_rule, value or ""):
        raise InvalidParameter(
            f"The entity name '{target}' is invalid according to its validation rule: {rule}.", target=target
        )


def validate_vm_name(name: str) -> None:
    entity_name(name, "vmName", ENTITY_RULE_64)


def required(value: Any, target: str) -> None:
    if value is None or value == "":
        raise InvalidParameter(f"Required parameter '{target}' is missing (null).", target=target)


def validate_computer_name(name: str, os_type: str) -> None:
    if os_type == "Windows":
        if len(name) > 15 or name.isdigit() or any(c in WINDOWS_NAME_CHARS for c in name):
            raise InvalidParameter(WINDOWS_COMPUTER_NAME, target="computerName")
    elif len(name) > 64 or any(c in LINUX_NAME_CHARS for c in name):
        raise InvalidParameter(LINUX_COMPUTER_NAME, target="computerName")


def validate_admin_username(name: str, os_type: str) -> None:
    bad = name.lower() in RESERVED_USERNAMES or name.endswith(".")
    if os_type == "Windows":
        bad = bad or len(name) > 20 or any(c in '\\/"[]:|<>+=;,?*@' for c in name)
    else:
        bad = bad or len(name) > 64 or not re.match(r"^[a-z_][a-z0-9_.-]*$", name, re.IGNORECASE)
    if bad:
        raise InvalidParameter("The Admin Username specified is not allowed.", target="adminUsername")


def password_message(os_type: str) -> str:
    low, high = (8, 123) if os_type == "Windows" else (6, 72)
    return (
        f"The supplied password must be between {low}-{high} characters long and must satisfy at least 3 of "
        "password complexity requirements from the following:\r\n1) Contains an uppercase character\r\n"
        "2) Contains a lowercase character\r\n3) Contains a numeric digit\r\n4) Contains a special character\r\n"
        "5) Control characters are not allowed"
    )


def validate_password(password: str, os_type: str) -> None:
    low, high = (8, 123) if os_type == "Windows" else (6, 72)
    classes = sum((
        any(c.isupper() for c in password),
        any(c.islower() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() and c.isprintable() for c in password),
    ))
    control = any(ord(c) < 32 or ord(c) == 127 for c in password)
    if not low <= len(password) <= high or classes < 3 or control or password.lower() in RESERVED_PASSWORDS:
        raise InvalidParameter(password_message(os_type), target="adminPassword")


def validate_ssh_keys(keys: list[dict[str, Any]], username: str) -> list[str]:
    """The authorized keys, after Azure's checks of each key's data and path."""
    out = []
    default_path = f"/home/{username}/.ssh/authorized_keys"
    for key in keys:
        data = str((key or {}).get("keyData") or "").strip()
        parts = data.split()
        valid = len(parts) >= 2 and parts[0] in SSH_KEY_TYPES
        if valid:
            try:
                base64.b64decode(parts[1], validate=True)
            except (binascii.Error, ValueError):
                valid = False
        if not valid:
            raise InvalidParameter(
                "The value of parameter linuxConfiguration.ssh.publicKeys.keyData is invalid.",
                target="linuxConfiguration.ssh.publicKeys.keyData",
            )
        path = (key or {}).get("path")
        if path and path != default_path:
            raise InvalidParameter(
                f"Destination path for SSH public keys is currently limited to its default value {default_path}  "
                "due to a known issue in Linux provisioning agent.",
                target="linuxConfiguration.ssh.publicKeys.path",
            )
        out.append(data)
    return out


def validate_custom_data(value: Any) -> str | None:
    if value in (None, ""):
        return None
    ok = isinstance(value, str) and len(value) <= MAX_CUSTOM_DATA
    if ok:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            ok = False
    if not ok:
        raise InvalidParameter(
            f"Custom data in OSProfile must be in Base64 encoding and with a maximum length of {MAX_CUSTOM_DATA} "
            "characters.",
            target="customData",
        )
    return str(value)


def os_profile(profile: dict[str, Any] | None, os_type: str, os_state: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Check osProfile against the image; return (wire osProfile, guest facts incl. secrets).

    A generalized image needs an osProfile (the guest is provisioned anew); a specialized one
    keeps its own identity, so an osProfile is refused.
    """
    if os_state == "Specialized":
        if profile:
            raise InvalidParameter("Parameter 'osProfile' is not allowed.", target="osProfile")
        return None, {}
    if not profile:
        raise InvalidParameter("Required parameter 'osProfile' is missing (null).", target="osProfile")
    if not isinstance(profile, dict):
        raise InvalidParameter("The value of parameter 'osProfile' is invalid.", target="osProfile")
    computer_name = profile.get("computerName")
    required(computer_name, "computerName")
    validate_computer_name(str(computer_name), os_type)
    username = profile.get("adminUsername")
    required(username, "adminUsername")
    validate_admin_username(str(username), os_type)
    password = profile.get("adminPassword") or None
    custom_data = validate_custom_data(profile.get("customData"))
    keys: list[str] = []
    wire = {k: copy.deepcopy(v) for k, v in profile.items() if k not in ("adminPassword", "customData")}
    if os_type == "Windows":
        if profile.get("linuxConfiguration"):
            raise InvalidParameter(
                "Parameter 'linuxConfiguration' is not allowed for a Windows image.", target="linuxConfiguration"
            )
        required(password, "adminPassword")
        validate_password(str(password), os_type)
        win = dict(wire.get("windowsConfiguration") or {})
        win.setdefault("provisionVMAgent", True)
        win.setdefault("enableAutomaticUpdates", True)
        win.setdefault("patchSettings", {"patchMode": "AutomaticByOS", "assessmentMode": "ImageDefault"})
        wire["windowsConfiguration"] = win
    else:
        if profile.get("windowsConfiguration"):
            raise InvalidParameter(
                "Parameter 'windowsConfiguration' is not allowed for a Linux image.", target="windowsConfiguration"
            )
        linux = dict(wire.get("linuxConfiguration") or {})
        ssh = linux.get("ssh") or {}
        keys = validate_ssh_keys(list(ssh.get("publicKeys") or []), str(username))
        no_password = bool(linux.get("disablePasswordAuthentication"))
        if (no_password or not password) and not keys:
            raise InvalidParameter(
                "Authentication using either SSH or by user name and password must be enabled in Linux profile.",
                target="linuxConfiguration",
            )
        if password and not no_password:
            validate_password(str(password), os_type)
        linux["disablePasswordAuthentication"] = no_password
        linux.setdefault("provisionVMAgent", True)
        linux.setdefault("patchSettings", {"patchMode": "ImageDefault", "assessmentMode": "ImageDefault"})
        if ssh:
            linux["ssh"] = {"publicKeys": [
                {"path": k.get("path") or f"/home/{username}/.ssh/authorized_keys", "keyData": k.get("keyData")}
                for k in ssh.get("publicKeys") or []
            ]}
        wire["linuxConfiguration"] = linux
    wire.setdefault("secrets", [])
    wire.setdefault("allowExtensionOperations", True)
    wire["requireGuestProvisionSignal"] = True
    guest = {
        "computer_name": str(computer_name),
        "admin_username": str(username),
        "admin_password": None if (os_type == "Linux" and not password) else password,
        "ssh_public_keys": keys,
        "custom_data": custom_data,
    }
    return wire, guest


def immutable_change(existing: dict[str, Any], new: dict[str, Any], custom_data: str | None) -> None:
    """A PUT on an existing VM may not change what the VM was built from.

    Re-sending the same body (a retried create, an ARM template redeploy) is fine: the admin
    password is then ignored, as Azure does.
    """
    old_ref = ((existing.get("storageProfile") or {}).get("imageReference")) or {}
    new_ref = ((new.get("storageProfile") or {}).get("imageReference"))
    if new_ref is not None:
        fields = ("id", "publisher", "offer", "sku", "version")
        if any(str(old_ref.get(f) or "").lower() != str(new_ref.get(f) or "").lower() for f in fields):
            raise property_change("imageReference")
    old_os = existing.get("osProfile") or {}
    new_os = new.get("osProfile")
    if new_os:
        for f in ("computerName", "adminUsername"):
            if new_os.get(f) is not None and str(new_os.get(f)) != str(old_os.get(f)):
                raise property_change(f"osProfile.{f}")
        if new_os.get("customData") and new_os.get("customData") != custom_data:
            raise property_change("customData")
    old_disk = (existing.get("storageProfile") or {}).get("osDisk") or {}
    new_disk = (new.get("storageProfile") or {}).get("osDisk") or {}
    if new_disk.get("name") and str(new_disk["name"]).lower() != str(old_disk.get("name", "")).lower():
        raise property_change("osDisk.name")


def property_change(prop: str) -> ArmError:
    return ArmError(
        f"Changing property '{prop}' is not allowed.", code="PropertyChangeNotAllowed", status=409, target=prop
    )
