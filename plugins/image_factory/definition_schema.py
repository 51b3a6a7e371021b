"""The JSON Schema of an image definition (include/images/*.yaml), with Azure's naming rules.

Patterns carry a ``description`` that says the rule in words: error messages quote it, so a
user reads "letters, digits, dots and underscores, 1-80 characters" rather than a regex.
"""

from __future__ import annotations

from typing import Any

INT32_MAX = 2_147_483_647
DEFAULT_RETENTION_KEEP = 5  # versions retention keeps when a definition has no retention.keep

KNOWN_REGIONS: tuple[str, ...] = (
    "eastus", "eastus2", "westus", "westus2", "westus3", "centralus", "northcentralus",
    "southcentralus", "canadacentral", "brazilsouth", "northeurope", "westeurope", "uksouth",
    "francecentral", "germanywestcentral", "swedencentral", "switzerlandnorth", "norwayeast",
    "eastasia", "southeastasia", "japaneast", "koreacentral", "australiaeast", "centralindia",
    "southafricanorth", "uaenorth",
)
STORAGE_ACCOUNT_TYPES = ("Standard_LRS", "Standard_ZRS", "Premium_LRS")

IMAGE_NAME = {"type": "string", "pattern": r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$",
              "description": "lower-case letters, digits and hyphens, 3-40 characters, starting with a letter"}
RESOURCE_GROUP = {"type": "string", "pattern": r"^[-\w._()]{0,89}[-\w_()]$",
                  "description": "letters, digits, underscores, hyphens, periods and parentheses, 1-90 "
                                 "characters, not ending in a period"}
GALLERY_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._]{0,78}[A-Za-z0-9]$",
                "description": "letters, digits, dots and underscores, 2-80 characters, not starting or "
                               "ending with a dot or underscore"}
DEFINITION_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,78}[A-Za-z0-9]$",
                   "description": "letters, digits, dots, hyphens and underscores, 2-80 characters, "
                                  "starting and ending with a letter or digit"}
IDENTIFIER_PART = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
                   "description": "letters, digits, dots, hyphens and underscores, 1-128 characters"}
VERSION = {"type": "string", "pattern": r"^\d{1,10}\.\d{1,10}\.\d{1,10}$",
           "description": "Major.Minor.Patch with whole numbers"}
REGION = {"type": "string", "enum": list(KNOWN_REGIONS)}
VM_SIZE = {"type": "string", "pattern": r"^(Standard|Basic)_[A-Za-z0-9_]+$",
           "description": "an Azure VM size such as Standard_D2s_v5"}
SCRIPT_PATH = {"type": "string", "pattern": r"^(linux|windows|smoke)/[A-Za-z0-9._-]+\.(sh|ps1)$",
               "description": "a file under include/scripts/linux, windows or smoke ending in .sh or .ps1"}
SHA256 = {"type": "string", "pattern": r"^[0-9a-f]{64}$", "description": "64 lower-case hex digits"}
RESOURCE_ID = {"type": "string", "pattern": r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/.+$",
               "description": "a full Azure resource id (/subscriptions/…/resourceGroups/…/providers/…)"}
TIME_OF_DAY = {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$", "description": "HH:MM, 24-hour clock"}
PRINCIPAL_ID = {"type": "string",
                "pattern": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
                "description": "a GUID, the principal's object id in Microsoft Entra ID (8-4-4-4-12 hex digits)"}
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal")
ROLE_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9 ._()/-]{0,127}$", "default": "Reader",
             "description": "an Azure role name such as Reader: letters, digits, spaces and . _ ( ) / -, "
                            "1-128 characters"}


def _obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or [],
            "additionalProperties": False, **extra}


MARKETPLACE_SOURCE = _obj({
    "publisher": IDENTIFIER_PART, "offer": IDENTIFIER_PART, "sku": IDENTIFIER_PART,
    "version": {"type": "string", "pattern": r"^(latest|\d+\.\d+\.\d+)$",
                "description": "latest, or a pinned Major.Minor.Patch version"},
}, ["publisher", "offer", "sku"])

GALLERY_SOURCE = _obj({
    "resource_group": RESOURCE_GROUP, "gallery": GALLERY_NAME, "definition": DEFINITION_NAME,
    "version": {"type": "string", "pattern": r"^(latest|\d{1,10}\.\d{1,10}\.\d{1,10})$",
                "description": "latest, or a Major.Minor.Patch version"},
}, ["resource_group", "gallery", "definition"])

DISK_FORMATS = ("auto", "raw", "qcow2", "vmdk", "vhd", "vhdx")
STORAGE_ACCOUNT = {"type": "string", "pattern": r"^[a-z0-9]{3,24}$",
                   "description": "3-24 lower-case letters and digits (Azure storage account names are global)"}
CONTAINER = {"type": "string", "pattern": r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$",
             "description": "3-63 lower-case letters, digits and single hyphens, starting and ending with a "
                            "letter or digit"}
DISK_SOURCE = _obj({
    "path": {"type": "string", "minLength": 1, "maxLength": 1024,
             "description": "the disk file on the worker: absolute, or relative to the import folder"},
    "format": {"enum": list(DISK_FORMATS), "default": "auto"},
    "staging": _obj({"resource_group": RESOURCE_GROUP, "storage_account": STORAGE_ACCOUNT, "container": CONTAINER}),
    "upload_threads": {"type": "integer", "minimum": 1, "maximum": 64},
}, ["path"])

SCHEMA: dict[str, Any] = _obj({
    "name": IMAGE_NAME,
    "description": {"type": "string", "minLength": 1, "maxLength": 2000},
    "owner": {"type": "string", "minLength": 1, "maxLength": 100},
    "tags": {"type": "array", "items": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]{0,31}$",
                                        "description": "lower-case words, 1-32 characters"}},
    "gallery": _obj({"resource_group": RESOURCE_GROUP, "name": GALLERY_NAME, "location": REGION},
                    ["resource_group", "name", "location"]),
    "image": _obj({
        "definition": DEFINITION_NAME,
        "publisher": IDENTIFIER_PART, "offer": IDENTIFIER_PART, "sku": IDENTIFIER_PART,
        "os_type": {"enum": ["Linux", "Windows"]},
        "os_state": {"enum": ["Generalized", "Specialized"]},
        "hyper_v_generation": {"enum": ["V1", "V2"]},
    }, ["definition", "publisher", "offer", "sku", "os_type", "os_state", "hyper_v_generation"]),
    "source": {
        "type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
        "description": "exactly one of marketplace, managed_image, gallery_image_version, disk",
        "properties": {"marketplace": MARKETPLACE_SOURCE, "managed_image": RESOURCE_ID,
                       "gallery_image_version": GALLERY_SOURCE, "disk": DISK_SOURCE},
    },
    "build": _obj({
        "location": REGION,
        "vm_size": VM_SIZE,
        "os_disk_gb": {"type": "integer", "minimum": 30, "maximum": 4095},
        "scripts": {"type": "array", "items": _obj({"path": SCRIPT_PATH, "sha256": SHA256}, ["path", "sha256"])},
        "timeout_minutes": {"type": "integer", "minimum": 5, "maximum": 720},
    }, ["location", "vm_size"]),
    "smoke": _obj({
        "vm_size": VM_SIZE,
        "checks": {"type": "array", "items": _obj({
            "name": {"type": "string", "minLength": 1, "maxLength": 80},
            "command": {"type": "string", "minLength": 1, "maxLength": 4000},
            "expect_output": {"type": "string", "maxLength": 400},
        }, ["name", "command"])},
    }),
    "replication": _obj({
        "regions": {"type": "array", "minItems": 1, "maxItems": 32, "items": _obj({
            "name": REGION,
            "replicas": {"type": "integer", "minimum": 1, "maximum": 100},
            "storage_account_type": {"enum": list(STORAGE_ACCOUNT_TYPES)},
        }, ["name"])},
        "timeout_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
    }, ["regions"]),
    "outputs": _obj({
        "gallery_version": {"type": "boolean"},
        "managed_image": _obj({"resource_group": RESOURCE_GROUP, "name": DEFINITION_NAME, "location": REGION},
                              ["name"]),
    }, minProperties=1),
    "end_of_life": _obj({"days": {"type": "integer", "minimum": 1, "maximum": 3650}}, ["days"]),
    "retention": _obj({"keep": {"type": "integer", "minimum": 1, "maximum": 1000,
                                "description": "how many of the newest good versions retention keeps"}}, ["keep"]),
    "sharing": {"type": "array", "maxItems": 100, "items": _obj({
        "principal_id": PRINCIPAL_ID,
        "principal_type": {"enum": list(PRINCIPAL_TYPES)},
        "role": ROLE_NAME,
    }, ["principal_id", "principal_type"])},
    "schedule": _obj({
        "patch_tuesday_offset_days": {"type": "integer", "minimum": 0, "maximum": 27},
        "time": TIME_OF_DAY,
        "publish_when_unchanged": {"type": "boolean", "default": True,
                                   "description": "false: a scheduled rebuild that finds the source, the scripts "
                                                  "and the package updates unchanged publishes nothing"},
    }),
}, ["name", "gallery", "image", "source", "build", "replication"])
