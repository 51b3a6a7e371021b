"""Azure regions the local Azure knows: canonical names and display names."""

from __future__ import annotations

from emulator.core.errors import ArmError

REGIONS: dict[str, str] = {
    "eastus": "East US",
    "eastus2": "East US 2",
    "westus": "West US",
    "westus2": "West US 2",
    "westus3": "West US 3",
    "centralus": "Central US",
    "northcentralus": "North Central US",
    "southcentralus": "South Central US",
    "canadacentral": "Canada Central",
    "brazilsouth": "Brazil South",
    "northeurope": "North Europe",
    "westeurope": "West Europe",
    "uksouth": "UK South",
    "francecentral": "France Central",
    "germanywestcentral": "Germany West Central",
    "swedencentral": "Sweden Central",
    "switzerlandnorth": "Switzerland North",
    "norwayeast": "Norway East",
    "eastasia": "East Asia",
    "southeastasia": "Southeast Asia",
    "japaneast": "Japan East",
    "koreacentral": "Korea Central",
    "australiaeast": "Australia East",
    "centralindia": "Central India",
    "southafricanorth": "South Africa North",
    "uaenorth": "UAE North",
}


def canonical(location: str | None, *, target: str = "location") -> str:
    """``East US`` / ``eastus`` / ``EASTUS`` → ``eastus``; unknown regions are ARM's 400."""
    if not location or not isinstance(location, str):
        raise ArmError(
            f"Required parameter '{target}' is missing (null).", code="InvalidParameter", target=target
        )
    key = location.replace(" ", "").lower()
    if key not in REGIONS:
        raise ArmError(
            f"The provided location '{location}' is not available for resource type. "
            f"List of available regions is '{','.join(REGIONS)}'.",
            code="LocationNotAvailableForResourceType",
            target=target,
        )
    return key


def display(location: str) -> str:
    return REGIONS.get(location.replace(" ", "").lower(), location)
