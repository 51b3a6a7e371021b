"""Bad conf for a golden-image DAG is refused at trigger time with the field and the rule."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from image_factory.conf_guard import ConfGuard, conf_problem

CREATED: list[Any] = []


async def trigger(request: Request) -> JSONResponse:
    CREATED.append(await request.json())  # stands in for Airflow creating the run
    return JSONResponse({"dag_run_id": "manual__1"})


@pytest.fixture
def client() -> TestClient:
    CREATED.clear()
    app = Starlette(routes=[Route("/api/v2/dags/{dag_id}/dagRuns", trigger, methods=["POST"])])
    return TestClient(ConfGuard(app))


AUTH = {"Authorization": "Bearer x"}


@pytest.mark.parametrize(("conf", "words"), [
    ({"colour": "blue"}, "conf: unknown key(s) colour"),
    ({"regions": ["westeurope", "marsnorth"]}, "conf.regions: unknown region(s) marsnorth"),
    ({"regions": ["eastus"]}, "conf.regions: must include the gallery's location 'westeurope'"),
    ({"replicas": 500}, "conf.replicas: must be a whole number from 1 to 100"),
])
def test_bad_conf_is_400_and_no_run_is_created(client: TestClient, conf: dict[str, Any], words: str) -> None:
    resp = client.post("/api/v2/dags/golden_debian12-web/dagRuns", json={"conf": conf}, headers=AUTH)
    assert resp.status_code == 400 and words in resp.json()["detail"]
    assert CREATED == []


def test_good_conf_reaches_airflow_with_its_body_intact(client: TestClient) -> None:
    body = {"logical_date": None, "conf": {"regions": ["westeurope", "northeurope"], "reason": "CVE-2026-1"}}
    resp = client.post("/api/v2/dags/golden_debian12-web/dagRuns", json=body, headers=AUTH)
    assert resp.status_code == 200 and CREATED == [body]


def test_other_dags_and_unauthenticated_requests_pass_through(client: TestClient) -> None:
    assert client.post("/api/v2/dags/some_other_dag/dagRuns", json={"conf": {"x": 1}}, headers=AUTH).status_code == 200
    assert client.post("/api/v2/dags/golden_debian12-web/dagRuns", json={"conf": {"x": 1}}).status_code == 200
    assert conf_problem("golden_no-such-image", b'{"conf": {"x": 1}}') is None
