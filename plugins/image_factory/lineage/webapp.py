"""The "Golden images" FastAPI app, mounted in Airflow's API server by the factory's plugin.

Every route requires an Airflow login: the UI's ``_token`` cookie (or a bearer token) is validated by
Airflow's own ``get_user`` with the configured auth manager, which must then allow the user the website
view. OpenAPI and docs routes are off, as FastAPI serves them outside the app's dependencies. Airflow is
imported inside the check only, so the scheduler and workers that load the plugin do not import the
API server's security module.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse

from image_factory.hooks.lineage import lineage_store
from image_factory.lineage import page
from image_factory.lineage.store import LineageError, summarize

URL_PREFIX = "/image-factory/lineage"
NO_STORE = {"Cache-Control": "no-store"}


async def airflow_user(request: Request) -> Any:
    """The signed-in Airflow user (401 without a valid token), who must be allowed to see the UI (else 403)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    user = await get_user(request, None, await bearer_scheme(request))
    if not get_auth_manager().is_authorized_view(access_view=AccessView.WEBSITE, user=user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this Airflow user may not view the Airflow UI")
    return user


app = FastAPI(title="Golden images", docs_url=None, redoc_url=None, openapi_url=None,
              dependencies=[Depends(airflow_user)])


def base_of(request: Request) -> str:
    """The path this app is mounted at, with a trailing slash: the pages' links stay inside the app."""
    return str(request.scope.get("root_path") or "").rstrip("/") + "/"


@app.get("/", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    return HTMLResponse(page.overview_page(lineage_store().versions(), base=base_of(request)), headers=NO_STORE)


@app.get("/versions/{image}/{version}", response_class=HTMLResponse)
def version_detail(request: Request, image: str, version: str) -> HTMLResponse:
    store = lineage_store()
    ref = f"{image}@{version}"
    try:
        rec = store.get(ref)
        ancestors, descendants = store.ancestors(ref), store.descendants(ref)
    except LineageError as e:
        return HTMLResponse(page.not_found_page(ref, str(e), base=base_of(request)),
                            status_code=status.HTTP_404_NOT_FOUND, headers=NO_STORE)
    html = page.detail_page(rec, ancestors=ancestors, descendants=descendants, records=store.versions(),
                            base=base_of(request))
    return HTMLResponse(html, headers=NO_STORE)


@app.get("/api/versions")
def versions_json(image: str | None = None) -> JSONResponse:
    """One line per version (``store.summarize``), of one image when ``image`` is given."""
    return JSONResponse({"versions": summarize(lineage_store().versions(image))}, headers=NO_STORE)
