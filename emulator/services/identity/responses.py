"""Token endpoints (managed identity, both styles; service principal via OAuth2) and cloud metadata.

Tokens are JWTs signed by the emulator; ARM calls are checked against them. Any client id and
secret is accepted for the service-principal flow (there is no directory here), but the tenant
must be this cloud's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from emulator.core import auth
from emulator.core.errors import ArmError
from emulator.core.routing import ArmRequest, ArmResponse

CLOUD_NAME = "LocalAzure"


def _resource(req: ArmRequest) -> str:
    return req.query.get("resource") or auth.ARM_AUDIENCE


def managed_identity_token(req: ArmRequest) -> ArmResponse:
    """App Service style (``IDENTITY_ENDPOINT``) and IMDS style (``/metadata/identity/oauth2/token``)."""
    token, expires_on = auth.issue(req.ctx, subject="local-managed-identity", app_id="local-managed-identity",
                                   resource=_resource(req))
    return ArmResponse(200, {
        "access_token": token,
        "expires_on": str(expires_on),
        "expires_in": "3600",
        "resource": _resource(req),
        "token_type": "Bearer",
        "client_id": "local-managed-identity",
    })


def _tenant_check(req: ArmRequest) -> str:
    tenant = req.params["tenant"]
    if tenant.lower() not in (req.ctx.tenant.lower(), "organizations", "common"):
        raise ArmError(
            f"AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID.",
            code="invalid_request", status=400,
        )
    return tenant


def openid_configuration(req: ArmRequest) -> ArmResponse:
    tenant = _tenant_check(req)
    base = req.base_url.rstrip("/")
    return ArmResponse(200, {
        "issuer": f"{base}/{req.ctx.tenant}/v2.0",
        "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
        "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
        "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
        "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
        "end_session_endpoint": f"{base}/{tenant}/oauth2/v2.0/logout",
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "tenant_region_scope": "NA",
        "cloud_instance_name": "local.azure",
    })


def oauth_token(req: ArmRequest) -> ArmResponse:
    _tenant_check(req)
    form: dict[str, Any] = {}
    if isinstance(req.body, str):
        form = {k: v[0] for k, v in parse_qs(req.body).items()}
    elif isinstance(req.body, dict):
        form = req.body
    if form.get("grant_type") != "client_credentials":
        raise ArmError("AADSTS70003: The app requested an unsupported grant type.", code="unsupported_grant_type")
    client_id = form.get("client_id")
    if not client_id or not (form.get("client_secret") or form.get("client_assertion")):
        raise ArmError("AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required.",
                       code="invalid_client", status=401)
    scope = form.get("scope", auth.ARM_AUDIENCE + ".default")
    resource = scope.split(" ")[0].replace("/.default", "").rstrip("/") + "/"
    token, _ = auth.issue(req.ctx, subject=client_id, app_id=client_id, resource=resource)
    return ArmResponse(200, {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": token})


def _metadata(req: ArmRequest) -> dict[str, Any]:
    base = req.base_url.rstrip("/")
    return {
        "name": CLOUD_NAME,
        "resourceManager": base + "/",
        "authentication": {
            "loginEndpoint": base + "/",
            "audiences": [auth.ARM_AUDIENCE, "https://management.azure.com/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "portal": base + "/",
        "gallery": base + "/",
        "graphAudience": base + "/",
        "microsoftGraphResourceId": base + "/",
        "suffixes": {"storage": "core.windows.net", "keyVaultDns": "vault.azure.net", "acrLoginServer": "azurecr.io"},
    }


def cloud_metadata(req: ArmRequest) -> ArmResponse:
    """2019-05-01 (``ARM_CLOUD_METADATA_URL``) wants a list of clouds; newer versions one object."""
    meta = _metadata(req)
    return ArmResponse(200, [meta] if req.api_version.startswith("2019") else meta)
