"""Per-run credentials are derived: stable for a run, different between runs, never printed."""

from __future__ import annotations

import re
import string

import pytest

from image_factory.credentials import SecretError, ssh_key_pair, windows_password

SECRET = "a-build-secret-of-enough-length"


def test_same_run_same_key_other_run_other_key() -> None:
    a, b = ssh_key_pair(SECRET, "dag/run1"), ssh_key_pair(SECRET, "dag/run1")
    assert a.public_openssh == b.public_openssh
    assert ssh_key_pair(SECRET, "dag/run2").public_openssh != a.public_openssh
    assert ssh_key_pair(SECRET, "dag/run1", role="smoke").public_openssh != a.public_openssh
    assert ssh_key_pair("another-secret-of-length", "dag/run1").public_openssh != a.public_openssh
    assert a.public_openssh.startswith("ssh-ed25519 ")
    assert a.paramiko_key().get_base64() == a.public_openssh.split()[1]


def test_repr_never_shows_the_private_key() -> None:
    pair = ssh_key_pair(SECRET, "dag/run1")
    assert "PRIVATE" not in repr(pair) and "PRIVATE" not in str(pair)
    assert re.fullmatch(r"SshKeyPair\(SHA256:[A-Za-z0-9+/]{43}\)", repr(pair))


def test_windows_password_meets_azure_complexity() -> None:
    pw = windows_password(SECRET, "dag/run1")
    assert pw == windows_password(SECRET, "dag/run1") and pw != windows_password(SECRET, "dag/run2")
    assert len(pw) == 24
    for cls in (string.ascii_uppercase, string.ascii_lowercase, string.digits, "!@#%^*-_=+"):
        assert any(c in cls for c in pw)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(SecretError, match="at least 16 bytes"):
        ssh_key_pair("short", "run")
