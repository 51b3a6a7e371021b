"""Resource ids parse and print the way ARM writes them."""

from __future__ import annotations

import pytest

from emulator.core import ids


def test_round_trip_nested_id():
    raw = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d/versions/1.0.0"
    rid = ids.parse(raw)
    assert str(rid) == raw
    assert rid.type == "Microsoft.Compute/galleries/images/versions"
    assert rid.name == "1.0.0"
    assert str(rid.parent) == "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d"


def test_group_casing_is_canonicalised():
    rid = ids.parse("/subscriptions/s1/resourcegroups/RG/providers/Microsoft.Network/virtualNetworks/v")
    assert str(rid).startswith("/subscriptions/s1/resourceGroups/RG/")
    assert rid.key == str(rid).lower()


@pytest.mark.parametrize("bad", ["", "/subscriptions", "/foo/bar", "/subscriptions/s/resourceGroups/rg/providers/x"])
def test_rejects_non_ids(bad):
    with pytest.raises(ValueError):
        ids.parse(bad)
