"""``image_source``: what compute gets when a VM boots from a version or a definition's latest version.

Versions are made through the SDK on the session local Azure; image_source is called in-process on
the same state, as the compute service calls it.
"""

from __future__ import annotations

import pytest

from emulator.core.errors import ArmError
from emulator.services.gallery.models import image_source
from tests.emulator.services.gallery.conftest import vhd_version_body


def _version(arm, group, gallery, definition, name, body):  # type: ignore[no-untyped-def]
    return arm.compute.gallery_image_versions.begin_create_or_update(group, gallery, definition, name, body).result()


def test_version_id_resolves_to_its_regional_replica(arm, group, gallery, definition, location, vhd_url, inproc,
                                                      local_azure):
    v = _version(arm, group, gallery, definition, "1.0.0", vhd_version_body(location, vhd_url, [location, "eastus"]))
    here = image_source(inproc, v.id, location)
    there = image_source(inproc, v.id, "East US")
    assert here["version_id"] == v.id and there["version_id"] == v.id
    assert (here["os_type"], here["os_state"], here["hyper_v_generation"]) == ("Linux", "Generalized", "V2")
    assert here["disk"]["kind"] == "vhd" and there["disk"]["kind"] == "vhd"
    assert "/regions/westeurope/" in here["disk"]["path"] and "/regions/eastus/" in there["disk"]["path"]
    assert here["disk"]["path"] != there["disk"]["path"]

    with pytest.raises(ArmError) as err:
        image_source(inproc, v.id, "japaneast")
    assert err.value.status == 404 and err.value.code == "GalleryImageNotFound"
    assert err.value.message == (
        f"The gallery image {v.id} is not available in japaneast region. Please contact image owner to replicate "
        "to this region, or change your requested region."
    )


def test_latest_skips_excluded_versions_globally_and_per_region(arm, group, gallery, definition, location, vhd_url,
                                                                 inproc):
    def_id = arm.compute.gallery_images.get(group, gallery, definition).id
    with pytest.raises(ArmError) as err:
        image_source(inproc, def_id, location)
    assert err.value.message == f'There is no latest image version exists for "{def_id}"'

    _version(arm, group, gallery, definition, "1.0.0", vhd_version_body(location, vhd_url, [location, "eastus"]))
    _version(arm, group, gallery, definition, "1.10.0", vhd_version_body(
        location, vhd_url, [location, {"name": "eastus", "excludeFromLatest": True}]))
    _version(arm, group, gallery, definition, "2.0.0", vhd_version_body(location, vhd_url, excludeFromLatest=True))
    _version(arm, group, gallery, definition, "1.9.0", vhd_version_body(location, vhd_url))

    assert image_source(inproc, def_id, location)["version_id"].endswith("/versions/1.10.0")  # numeric, not text order
    assert image_source(inproc, def_id, "eastus")["version_id"].endswith("/versions/1.0.0")  # 1.10.0 excluded there
    with pytest.raises(ArmError) as err:
        image_source(inproc, def_id, "westus")
    assert err.value.code == "GalleryImageNotFound" and "westus region" in err.value.message

    # promotion: clearing excludeFromLatest makes 2.0.0 the latest
    arm.compute.gallery_image_versions.begin_update(group, gallery, definition, "2.0.0", {
        "properties": {"publishingProfile": {"excludeFromLatest": False}}}).result()
    assert image_source(inproc, def_id, location)["version_id"].endswith("/versions/2.0.0")
    # an explicit version id ignores excludeFromLatest
    assert image_source(inproc, def_id + "/versions/1.10.0", "eastus")["version_id"].endswith("/1.10.0")


def test_unknown_ids_are_not_available(inproc, arm):
    sub = arm.subscription_id
    missing = f"/subscriptions/{sub}/resourceGroups/nope/providers/Microsoft.Compute/galleries/g/images/i/versions/1.0.0"
    for image_id in (missing, "garbage"):
        with pytest.raises(ArmError) as err:
            image_source(inproc, image_id, "westeurope")
        assert err.value.code == "GalleryImageNotFound"
