"""Routes that need no bearer token: sign-in and cloud metadata."""

from __future__ import annotations

from emulator.core.routing import Router
from emulator.services.identity import responses as r

router = Router()
router.add("GET", r"/msi/token", "identity/managedIdentity/token")(r.managed_identity_token)
router.add("GET", r"/metadata/identity/oauth2/token", "identity/imds/token")(r.managed_identity_token)
router.add("GET", r"/metadata/endpoints", "metadata/endpoints/read")(r.cloud_metadata)
router.add("GET", r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration", "identity/openid/read")(r.openid_configuration)
router.add("GET", r"/(?P<tenant>[^/]+)/\.well-known/openid-configuration", "identity/openid/read")(r.openid_configuration)
router.add("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", "identity/oauth2/token")(r.oauth_token)
