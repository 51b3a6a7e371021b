"""The VHD footer: what Azure checks on an uploaded disk, against files written here and by hand."""

from __future__ import annotations

import struct

import pytest

from emulator.storage import vhd

MIB = 1024 * 1024


def test_written_fixed_vhd_passes_and_reads_back(tmp_path):
    path = vhd.write_fixed(tmp_path / "disk.vhd", 4 * MIB, b"boot sector")
    assert path.stat().st_size == 4 * MIB + 512
    footer = vhd.check_fixed(path)
    assert footer.cookie == b"conectix" and footer.disk_type == 2 and footer.disk_type_name == "Fixed"
    assert footer.current_size == footer.original_size == 4 * MIB
    assert footer.data_offset == 0xFFFFFFFFFFFFFFFF
    assert path.read_bytes()[:11] == b"boot sector"


def test_checksum_is_ones_complement_of_the_byte_sum():
    raw = vhd.make_footer(MIB)
    stored = struct.unpack(">I", raw[64:68])[0]
    assert stored == (~(sum(raw[:64]) + sum(raw[68:])) & 0xFFFFFFFF)


def test_geometry_follows_the_specification_algorithm():
    # worked by hand from the VHD specification's CHS algorithm
    assert vhd.geometry(127 * MIB) == (1019, 15, 17)  # 260096 sectors: 17 per track fits
    assert vhd.geometry(30 * 1024 * MIB) == (62415, 16, 63)  # needs 63 sectors per track
    assert vhd.geometry(3000 * 1024 * MIB) == (65535, 16, 255)  # capped


def test_wrong_cookie(tmp_path):
    path = tmp_path / "raw.img"
    path.write_bytes(b"\0" * (MIB + 512))
    with pytest.raises(vhd.VhdError) as err:
        vhd.check_fixed(path)
    assert err.value.reason == "cookie"


def test_tiny_file(tmp_path):
    path = tmp_path / "tiny"
    path.write_bytes(b"x")
    with pytest.raises(vhd.VhdError) as err:
        vhd.check_fixed(path)
    assert err.value.reason == "cookie"


def test_corrupted_checksum(tmp_path):
    path = vhd.write_fixed(tmp_path / "d.vhd", MIB)
    data = bytearray(path.read_bytes())
    data[-512 + 40] ^= 0xFF  # original size byte: the checksum no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(vhd.VhdError) as err:
        vhd.check_fixed(path)
    assert err.value.reason == "checksum"


def test_dynamic_disk_is_refused(tmp_path):
    path = tmp_path / "dyn.vhd"
    path.write_bytes(b"\0" * MIB + vhd.make_footer(MIB, disk_type=3))
    with pytest.raises(vhd.VhdError) as err:
        vhd.check_fixed(path)
    assert err.value.reason == "type" and "Dynamic" in err.value.detail


def test_size_not_whole_mib(tmp_path):
    size = MIB + 4096
    path = tmp_path / "odd.vhd"
    path.write_bytes(b"\0" * size + vhd.make_footer(size))
    with pytest.raises(vhd.VhdError) as err:
        vhd.check_fixed(path)
    assert err.value.reason == "alignment" and str(size) in err.value.detail


def test_footer_disagreeing_with_file_size(tmp_path):
    path = tmp_path / "short.vhd"
    path.write_bytes(b"\0" * MIB + vhd.make_footer(2 * MIB))
    with pytest.raises(vhd.VhdError) as err:
        vhd.check_fixed(path)
    assert err.value.reason == "size"
