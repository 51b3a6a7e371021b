"""The simulated Windows Server guest's system: identity, accounts, updates, features, sysprep.

Sysprep follows the real ImageState machine (HKLM\\...\\Setup\\State): a deployed machine is
IMAGE_STATE_COMPLETE; ``sysprep /generalize /oobe`` moves it to IMAGE_STATE_UNDEPLOYABLE while it
works and to IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE when done (machine SID and identity removed);
the next boot specializes it (IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE) and OOBE completes it.
Booting a generalized VM from a disk that was not sysprepped never finishes provisioning, as on
Azure (OSProvisioningTimedOut). Pure state transitions; the runtime supplies the clock.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from emulator.guests.simulated import catalog
from emulator.guests.simulated.linux import check_password, hash_password

COMPLETE = "IMAGE_STATE_COMPLETE"
UNDEPLOYABLE = "IMAGE_STATE_UNDEPLOYABLE"
GENERALIZED = "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
SPECIALIZING = "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE"
STATE_KEY = r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State"
SYSPREP = r"C:\Windows\System32\Sysprep\sysprep.exe"
SYSPREP_SECONDS = 90.0  # Azure-time a /generalize /oobe pass takes (scaled by the runtime)
# the emulator setting that, above 0, makes every pass take that many wall-clock seconds instead (tests that
# must watch a sysprep in progress, with all else instant at time factor 0)
SYSPREP_SECONDS_SETTING = "sysprep_seconds"


class SysprepError(Exception):
    pass


@dataclass
class WindowsProvisioning:
    instance_id: str
    computer_name: str
    username: str
    password: str


def nt_hash(password: str) -> str:
    """The NT hash Windows keeps in its SAM (MD4 of UTF-16LE), as hex: what NTLM authentication checks."""
    from spnego._ntlm_raw.crypto import ntowfv1

    return ntowfv1(password).hex()


class WindowsSystem:
    def __init__(self, os_state: dict[str, Any]) -> None:
        self.os = os_state

    @property
    def computer_name(self) -> str:
        return str(self.os["computer_name"])

    @property
    def image_state(self) -> str:
        return str(self.os["image_state"])

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        users: dict[str, dict[str, Any]] = self.os["users"]
        return users

    def user(self, name: str) -> dict[str, Any] | None:
        for n, u in self.users.items():
            if n.lower() == name.lower():
                return u
        return None

    def canonical_user(self, name: str) -> str | None:
        return next((n for n in self.users if n.lower() == name.lower()), None)

    def check_password(self, name: str, password: str) -> bool:
        u = self.user(name)
        if not u or not u.get("enabled"):
            return False
        return check_password(u.get("password"), password)

    def is_admin(self, name: str) -> bool:
        u = self.user(name)
        return bool(u and u.get("admin"))

    # boot and provisioning ---------------------------------------------------------------
    def can_specialize(self) -> bool:
        """A generalized VM only provisions from a sysprepped disk (else Azure reports OSProvisioningTimedOut)."""
        return self.image_state == GENERALIZED

    def first_boot(self, prov: WindowsProvisioning) -> list[str]:
        """specialize + OOBE with Azure's unattend answers: name, SID, administrator account."""
        if not self.can_specialize():
            raise SysprepError(f"the disk is in {self.image_state}, not generalized: OOBE never finishes")
        self.os["image_state"] = SPECIALIZING
        self.os["computer_name"] = prov.computer_name
        self.os["machine_sid"] = "S-1-5-21-" + "-".join(str(secrets.randbelow(2**31)) for _ in range(3))
        existing = self.canonical_user(prov.username)
        name = existing or prov.username
        user = self.users.setdefault(name, {"sid_rid": 1000 + len(self.users)})
        user.update({"enabled": True, "admin": True, "password": hash_password(prov.password),
                     "nt_hash": nt_hash(prov.password)})
        self.os["image_state"] = COMPLETE
        self.os.setdefault("history", []).append({"event": "provisioned", "computer_name": prov.computer_name,
                                                  "user": name, "instance": prov.instance_id})
        return [f"specialize: computer name {prov.computer_name}", f"OOBE: administrator {name}",
                f"ImageState {COMPLETE}"]

    # sysprep -------------------------------------------------------------------------------
    def sysprep_begin(self, *, generalize: bool, oobe: bool) -> None:
        if self.image_state != COMPLETE:
            raise SysprepError(f"Sysprep was not able to validate your Windows installation (ImageState "
                               f"{self.image_state}). Review the log file at "
                               r"%WINDIR%\System32\Sysprep\Panther\setupact.log for details.")
        if generalize:
            self.os["image_state"] = UNDEPLOYABLE

    def sysprep_finish(self, *, generalize: bool, oobe: bool) -> None:
        if generalize:
            self.os["machine_sid"] = None
            self.os["image_state"] = GENERALIZED if oobe else "IMAGE_STATE_GENERALIZE_RESEAL_TO_AUDIT"
            self.os["sysprep_count"] = int(self.os.get("sysprep_count", 0)) + 1
        self.os.setdefault("history", []).append({"event": "sysprep", "generalize": generalize, "oobe": oobe})

    # updates and features ------------------------------------------------------------------
    @property
    def hotfixes(self) -> list[dict[str, str]]:
        hotfixes: list[dict[str, str]] = self.os["hotfixes"]
        return hotfixes

    def pending_updates(self, serial: int) -> list[dict[str, str]]:
        """The month's cumulative update, if this machine does not have it yet."""
        have = {h["HotFixID"] for h in self.hotfixes}
        wanted = [catalog.servicing_stack(self.os["image"], serial), catalog.cumulative_update(self.os["image"], serial)]
        return [u for u in wanted if u["HotFixID"] not in have]

    def install_updates(self, serial: int) -> list[dict[str, str]]:
        new = self.pending_updates(serial)
        if new:
            self.hotfixes.extend(new)
            self.os["ubr"] = catalog.windows_ubr(self.os["image"], serial)
        return new

    @property
    def features(self) -> list[str]:
        features: list[str] = self.os["features"]
        return features

    def install_feature(self, name: str) -> list[str]:
        if name not in catalog.WINDOWS_FEATURES:
            raise KeyError(name)
        added = []
        for n in (*catalog.FEATURE_DEPENDS.get(name, ()), name):
            if n not in self.features:
                self.features.append(n)
                added.append(n)
                svc = catalog.FEATURE_SERVICES.get(n)
                if svc:
                    self.os["services"][svc[0]] = {"display": svc[1], "start": "Automatic", "running": True}
        self.features.sort()
        return added

    def boot(self) -> None:
        for svc in self.os["services"].values():
            svc["running"] = svc.get("start") == "Automatic"


def check_nt_hash(stored_hex: str | None, password: str) -> bool:
    if not stored_hex:
        return False
    return hmac.compare_digest(stored_hex, nt_hash(password))
