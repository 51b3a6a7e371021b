"""Disk reports (format, boot, root filesystem, OS-state evidence) and contradictions with the definition."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from image_factory.disks import MIB, DiskError
from image_factory.disks.inspection import check_against, inspect_disk
from image_factory.errors import is_transient
from tests.plugins.image_factory.disks.builders import sh


def contradictions(report: object, **declared: str) -> dict[str, str]:
    with pytest.raises(DiskError) as caught:
        check_against(report, **declared)  # type: ignore[arg-type]
    assert not is_transient(caught.value)
    return dict(caught.value.problems)


def test_a_generalized_mbr_disk_matches_a_generalized_v1_definition(disk_factory: Callable[..., Path]) -> None:
    report = inspect_disk(disk_factory("gen.raw"))
    assert (report.format, report.virtual_size, report.partition_table.scheme) == ("raw", 8 * MIB, "mbr")
    assert report.root is not None and (report.root.partition, report.root.filesystem) == (1, "ext4")
    assert report.os_release["ID"] == "debian" and report.os_release["VERSION_ID"] == "12"
    assert report.os_family == "Linux" and report.os_state == "generalized"
    assert report.evidence is not None and report.evidence.machine_id == "empty" and not report.evidence.signs()
    check_against(report, os_type="Linux", os_state="Generalized", hyper_v_generation="V1")


def test_the_evidence_of_a_specialized_disk(disk_factory: Callable[..., Path]) -> None:
    report = inspect_disk(disk_factory("special.qcow2", fmt="qcow2", table="gpt", generalized=False))
    ev = report.evidence
    assert ev is not None and report.os_state == "specialized"
    assert ev.machine_id == "set"
    assert ev.ssh_host_keys == ("ssh_host_ecdsa_key", "ssh_host_ed25519_key")
    assert [(u.name, u.uid, u.home, u.home_exists) for u in ev.users] == [("alice", 1000, "/home/alice", True)]
    assert ev.waagent_markers == ("ovf-env.xml", "provisioned")
    assert ev.cloud_init_instances == ("iid-local01",)
    check_against(report, os_type="Linux", os_state="Specialized", hyper_v_generation="V2")
    assert "os state: specialized: /etc/machine-id is set" in report.summary()


def test_generalized_declared_for_a_disk_that_was_not(disk_factory: Callable[..., Path]) -> None:
    report = inspect_disk(disk_factory("special.raw", generalized=False))
    found = contradictions(report, os_type="Linux", os_state="Generalized", hyper_v_generation="V2")
    assert found["image.hyper_v_generation"] == ("the definition says V2 but the disk has an MBR partition table "
                                                 "and no EFI system partition (it boots as V1)")
    assert found["image.os_state"].startswith(
        "the definition says Generalized but the disk was not generalized: /etc/machine-id is set, SSH host keys "
        "present (ssh_host_ecdsa_key, ssh_host_ed25519_key), user 'alice' has a home (/home/alice), ")
    assert set(found) == {"image.hyper_v_generation", "image.os_state"}  # every contradiction in one error


def test_specialized_declared_for_a_generalized_disk(disk_factory: Callable[..., Path]) -> None:
    report = inspect_disk(disk_factory("gen-gpt.vhdx", fmt="vhdx", table="gpt"))
    found = contradictions(report, os_type="Linux", os_state="Specialized", hyper_v_generation="V1")
    assert found["image.os_state"].startswith("the definition says Specialized but the disk looks generalized: "
                                              "/etc/machine-id is empty, no SSH host keys")
    assert "GPT partition table with an EFI system partition (partition 1)" in found["image.hyper_v_generation"]


def test_a_linux_disk_declared_windows(disk_factory: Callable[..., Path]) -> None:
    report = inspect_disk(disk_factory("gen.raw"))
    found = contradictions(report, os_type="Windows", os_state="Generalized", hyper_v_generation="V1")
    assert found == {"image.os_type": "the definition says Windows but the disk holds Debian GNU/Linux 12 "
                                      "(bookworm) (partition 1)"}


def test_an_unreadable_filesystem_leaves_the_os_state_unknown(tmp_path: Path) -> None:
    """A Windows disk: NTFS is not read, so no OS-state contradiction is claimed, and the report says why."""
    p = tmp_path / "windows.raw"
    with open(p, "wb") as fh:
        fh.truncate(4 * MIB)
    sh("sfdisk", "--quiet", str(p), stdin="label: dos\nstart=2048, type=7, bootable\n")
    with open(p, "r+b") as fh:  # an NTFS boot sector at the partition's start
        fh.seek(MIB + 3)
        fh.write(b"NTFS    ")
        fh.seek(MIB + 510)
        fh.write(b"\x55\xaa")
    report = inspect_disk(p)
    assert report.os_family == "Windows" and report.os_state == "unknown" and report.evidence is None
    assert any("os state unknown" in n and "ntfs (partition 1)" in n for n in report.notes)
    for state in ("Generalized", "Specialized"):
        check_against(report, os_type="Windows", os_state=state, hyper_v_generation="V1")
    assert contradictions(report, os_type="Linux", os_state="Generalized", hyper_v_generation="V1") == {
        "image.os_type": "the definition says Linux but the disk holds NTFS and no Linux filesystem (a Windows disk)"}


def test_other_formats_are_read_from_a_temporary_raw_copy_that_is_removed(disk_factory: Callable[..., Path],
                                                                          tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    report = inspect_disk(disk_factory("special.vmdk", fmt="vmdk", generalized=False), work_dir=work)
    assert report.format == "vmdk" and report.os_state == "specialized"
    assert list(work.iterdir()) == []


def test_a_broken_fixed_vhd_is_still_inspected_and_its_footer_problems_reported(disk_factory: Callable[..., Path],
                                                                                tmp_path: Path) -> None:
    p = tmp_path / "broken.vhd"
    p.write_bytes(disk_factory("gen.vhd", fmt="vhd").read_bytes())
    with open(p, "r+b") as fh:
        fh.seek(-512, 2)
        fh.write(b"CONECTIX")
    report = inspect_disk(p)
    assert [what for what, _ in report.vhd_problems] == ["vhd.cookie", "vhd.checksum"]
    assert report.os_state == "generalized" and report.boot.generations == {"V1"}


def test_the_report_and_conversion_as_primitives(disk_factory: Callable[..., Path], tmp_path: Path) -> None:
    import json

    from image_factory.disks.convert import convert_to_fixed_vhd

    facts = inspect_disk(disk_factory("special.raw", generalized=False)).as_dict()
    assert json.loads(json.dumps(facts)) == facts
    assert (facts["format"], facts["generations"], facts["os_state"]) == ("raw", ["V1"], "specialized")
    done = convert_to_fixed_vhd(disk_factory("gen.qcow2", fmt="qcow2"), tmp_path).as_dict()
    assert json.loads(json.dumps(done)) == done and str(done["path"]).endswith(".vhd")
