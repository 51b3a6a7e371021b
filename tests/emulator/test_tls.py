"""The local Azure's server certificate: the names it is valid for, and reissue when a name is added."""

from __future__ import annotations

from emulator.tls import dns_names, ensure_certificates, names_from_env


def test_the_certificate_names_localhost_and_the_extra_names(tmp_path):
    _, cert, _ = ensure_certificates(tmp_path, ["local-azure"])
    assert dns_names(cert) == {"localhost", "local-azure"}


def test_the_same_names_keep_the_certificate_and_a_new_name_reissues_it(tmp_path):
    ca, cert, _ = ensure_certificates(tmp_path)
    first_ca = ca.read_bytes()
    ensure_certificates(tmp_path, ["localhost"])
    assert ca.read_bytes() == first_ca  # clients that trust the CA keep trusting it
    ensure_certificates(tmp_path, ["local-azure"])
    assert "local-azure" in dns_names(cert) and ca.read_bytes() != first_ca


def test_extra_names_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("LOCAL_AZURE_TLS_NAMES", " local-azure, azure.internal ,")
    assert names_from_env() == ["local-azure", "azure.internal"]
