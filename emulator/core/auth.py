"""Bearer tokens: the emulator issues JWTs (HS256, its own key) and ARM calls must carry one."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from emulator.core.context import Context
from emulator.core.errors import Unauthorized

ARM_AUDIENCE = "https://management.core.windows.net/"


def issue(ctx: Context, *, subject: str, app_id: str, resource: str = ARM_AUDIENCE, lifetime: int = 3600) -> tuple[str, int]:
    """A token for ``subject``; returns (token, expires_on epoch seconds)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": resource,
        "iss": f"https://sts.windows.net/{ctx.tenant}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "tid": ctx.tenant,
        "oid": subject,
        "sub": subject,
        "appid": app_id,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, ctx.signing_key, algorithm="HS256"), now + lifetime


def verify(ctx: Context, authorization: str | None) -> dict[str, Any]:
    """Claims of a valid bearer token, else ARM's 401 answers."""
    if not authorization:
        raise Unauthorized(
            "Authentication failed. The 'Authorization' header is missing.", code="AuthenticationFailed"
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
            code="AuthenticationFailed",
        )
    try:
        claims: dict[str, Any] = jwt.decode(
            token.strip(), ctx.signing_key, algorithms=["HS256"], options={"verify_aud": False}
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized(
            "The access token expiry UTC time is earlier than current UTC time.", code="ExpiredAuthenticationToken"
        ) from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized(
            "The access token is invalid: it was not issued by this cloud's identity endpoint.",
            code="InvalidAuthenticationToken",
        ) from exc
    return claims
