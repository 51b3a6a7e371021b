"""Shared access signatures signed with an account key, as ListAccountSas and ListServiceSas return them.

The string-to-sign layouts are the Azure Storage specification's for signed version 2020-12-06 and
later ("Create an account SAS", "Create a service SAS"); Azurite checks them the same way. Values are
signed as they appear, URL-decoded, in the token. Pure functions: no state, no HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from emulator.core.errors import ArmError

VERSION = "2022-11-02"
_SERVICES = "bqtf"
_RESOURCE_TYPES = "sco"
_ACCOUNT_PERMISSIONS = "rwdlacupitfxy"
_BLOB_PERMISSIONS = "racwdxyltmeopi"


def invalid(field: str, why: str = "") -> ArmError:
    """The storage RP's answer to a bad request value."""
    return ArmError(f"Values for request parameters are invalid: {field}.{(' ' + why) if why else ''}",
                    code="InvalidValuesForRequestParameters", target=field)


def sign(key: str, string_to_sign: str) -> str:
    digest = hmac.new(base64.b64decode(key), string_to_sign.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def account_sas(account: str, key: str, params: dict[str, Any]) -> str:
    """The token for an ``AccountSasParameters`` body (signedServices, ..., signedExpiry)."""
    services = _letters(params, "signedServices", _SERVICES)
    types = _letters(params, "signedResourceTypes", _RESOURCE_TYPES)
    permissions = _letters(params, "signedPermission", _ACCOUNT_PERMISSIONS)
    start = _time(params, "signedStart", required=False)
    expiry = _time(params, "signedExpiry", required=True)
    ip = _text(params, "signedIp")
    protocol = _protocol(params)
    to_sign = "\n".join([account, permissions, services, types, start, expiry, ip, protocol, VERSION, "", ""])
    fields = [("sv", VERSION), ("ss", services), ("srt", types), ("sp", permissions), ("st", start), ("se", expiry),
              ("sip", ip), ("spr", protocol), ("sig", sign(key, to_sign))]
    return _token(fields)


def service_sas(account: str, key: str, params: dict[str, Any]) -> str:
    """The token for a ``ServiceSasParameters`` body naming a blob or a container of ``account``."""
    canonical = _text(params, "canonicalizedResource")
    resource = _text(params, "signedResource")
    parts = canonical.split("/")
    if len(parts) < 4 or parts[0] != "" or parts[1] != "blob" or parts[2] != account or not parts[3]:
        raise invalid("canonicalizedResource",
                      f"Expected '/blob/{account}/{{container}}' or '/blob/{account}/{{container}}/{{blob}}'.")
    is_blob = len(parts) > 4 and bool("/".join(parts[4:]))
    if resource not in ("b", "c") or (resource == "b") != is_blob:
        raise invalid("signedResource", "The local Azure signs blob ('b') and container ('c') SAS only, and 'b' "
                      "needs a blob in canonicalizedResource.")
    identifier = _text(params, "signedIdentifier")
    permissions = _letters(params, "signedPermission", _BLOB_PERMISSIONS, required=not identifier)
    start = _time(params, "signedStart", required=False)
    expiry = _time(params, "signedExpiry", required=not identifier)
    ip = _text(params, "signedIp")
    protocol = _protocol(params)
    headers = [_text(params, name) for name in ("rscc", "rscd", "rsce", "rscl", "rsct")]
    to_sign = "\n".join([permissions, start, expiry, canonical, identifier, ip, protocol, VERSION, resource,
                         "", "", *headers])
    fields = [("sv", VERSION), ("sr", resource), ("sp", permissions), ("st", start), ("se", expiry),
              ("si", identifier), ("sip", ip), ("spr", protocol),
              *zip(("rscc", "rscd", "rsce", "rscl", "rsct"), headers, strict=True), ("sig", sign(key, to_sign))]
    return _token(fields)


def _token(fields: list[tuple[str, str]]) -> str:
    return "&".join(f"{name}={quote(value, safe='')}" for name, value in fields if value)


def _text(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid(name)
    return value


def _letters(params: dict[str, Any], name: str, allowed: str, *, required: bool = True) -> str:
    value = _text(params, name)
    if (required and not value) or any(c not in allowed for c in value) or len(set(value)) != len(value):
        raise invalid(name, f"Use each of the letters '{allowed}' at most once.")
    return value


def _time(params: dict[str, Any], name: str, *, required: bool) -> str:
    """An ISO 8601 time, as the token carries it: UTC to the second (``2030-01-01T00:00:00Z``)."""
    value = _text(params, name)
    if not value:
        if required:
            raise invalid(name, "It is required.")
        return ""
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise invalid(name, f"'{value}' is not an ISO 8601 date and time.") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _protocol(params: dict[str, Any]) -> str:
    value = _text(params, "signedProtocol")
    if value not in ("", "https", "https,http"):
        raise invalid("signedProtocol", "Use 'https' or 'https,http'.")
    return value
