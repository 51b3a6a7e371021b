"""Per-run guest credentials, derived rather than stored (pure: no Airflow, no I/O).

Each run's SSH key pair and Windows password are derived with HKDF from the factory's build
secret (kept encrypted by Airflow as a Variable) and the run's identity. Every task of the run,
and every retry, derives the same credentials again, so the private parts never have to travel
through XCom, rendered fields, logs or the metadata database.
"""

from __future__ import annotations

import base64
import hashlib
import io
import string
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_SECRET_BYTES = 16


class SecretError(ValueError):
    """The build secret is missing or too weak."""


def _derive(secret: str, info: str, length: int = 32) -> bytes:
    if not secret or len(secret.encode()) < MIN_SECRET_BYTES:
        raise SecretError(f"the factory's build secret must have at least {MIN_SECRET_BYTES} bytes")
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"golden-image-factory/v1",
                info=info.encode()).derive(secret.encode())


@dataclass(frozen=True, repr=False)
class SshKeyPair:
    """An Ed25519 key pair; ``repr`` never shows the private key."""

    private_openssh: str
    public_openssh: str

    @property
    def fingerprint(self) -> str:
        blob = base64.b64decode(self.public_openssh.split()[1])
        return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")

    def paramiko_key(self):  # type: ignore[no-untyped-def]  # paramiko is typed loosely
        import paramiko

        return paramiko.Ed25519Key.from_private_key(io.StringIO(self.private_openssh))

    def __repr__(self) -> str:
        return f"SshKeyPair({self.fingerprint})"


def ssh_key_pair(secret: str, run_key: str, role: str = "build") -> SshKeyPair:
    """The run's SSH key pair for ``role`` (build or smoke): same inputs, same key."""
    private = Ed25519PrivateKey.from_private_bytes(_derive(secret, f"ssh:{role}:{run_key}"))
    private_text = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                         serialization.NoEncryption()).decode()
    public_text = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                    serialization.PublicFormat.OpenSSH).decode()
    return SshKeyPair(private_text, f"{public_text} golden-image-factory-{role}")


def windows_password(secret: str, run_key: str, role: str = "build") -> str:
    """A 24-character password meeting Azure's Windows rules (all four character classes)."""
    raw = _derive(secret, f"winrm:{role}:{run_key}", 48)
    classes = (string.ascii_uppercase, string.ascii_lowercase, string.digits, "!@#%^*-_=+")
    everything = "".join(classes)
    chars = [classes[i][raw[i] % len(classes[i])] for i in range(4)]
    chars += [everything[b % len(everything)] for b in raw[4:24]]
    # a fixed position per class is guessable structure: interleave by the remaining bytes
    order = sorted(range(len(chars)), key=lambda i: (raw[24 + i], i))
    return "".join(chars[i] for i in order)
