"""deploy/helm/values.yaml parses, names only keys the official Airflow chart knows at its top level (the
chart's values.schema.json refuses any other), and hands the factory the connection and Variable its
code reads. Nothing here installs the chart: no Kubernetes runs in these tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

VALUES = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "values.yaml"

# The top-level keys of the apache/airflow chart's values.yaml (chart 1.18), read from the chart.
CHART_TOP_LEVEL_KEYS = frozenset("""
fullnameOverride nameOverride useStandardNaming revisionHistoryLimit uid gid securityContext securityContexts
containerLifecycleHooks airflowHome defaultAirflowRepository defaultAirflowTag defaultAirflowDigest
airflowVersion images nodeSelector affinity tolerations topologySpreadConstraints schedulerName labels
ingress networkPolicies airflowPodAnnotations airflowConfigAnnotations airflowLocalSettings rbac executor
allowPodLaunching env volumes volumeMounts secret enableBuiltInSecretEnvVars priorityClasses extraSecrets
extraConfigMaps extraEnv extraEnvFrom data fernetKey fernetKeySecretName fernetKeySecretAnnotations
apiSecretKey apiSecretAnnotations apiSecretKeySecretName jwtSecret jwtSecretAnnotations jwtSecretName
webserverSecretKey webserverSecretAnnotations webserverSecretKeySecretName kerberos workers scheduler
createUserJob migrateDatabaseJob apiServer webserver triggerer dagProcessor flower statsd pgbouncer redis
registry elasticsearch opensearch ports quotas limits cleanup postgresql config multiNamespaceMode
podTemplate dags logs
""".split())
EXECUTORS = {"LocalExecutor", "CeleryExecutor", "KubernetesExecutor", "CeleryExecutor,KubernetesExecutor"}


def values() -> dict[str, Any]:
    loaded = yaml.safe_load(VALUES.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_values_parse_and_use_only_keys_the_chart_knows() -> None:
    found = values()
    assert sorted(set(found) - CHART_TOP_LEVEL_KEYS) == []
    assert found["executor"] in EXECUTORS
    assert found["airflowVersion"].startswith("3.")
    assert found["images"]["airflow"]["repository"].endswith("golden-image-factory")


def test_the_factory_gets_its_connection_and_build_secret() -> None:
    from image_factory.hooks.lineage import LINEAGE_CONN_ID
    from image_factory.operators.base import DEFAULT_CONN_ID
    from image_factory.pipeline.build import SECRET_VARIABLE

    env_names = {entry["envName"] for entry in values()["secret"]}
    assert env_names == {f"AIRFLOW_CONN_{DEFAULT_CONN_ID.upper()}", f"AIRFLOW_VAR_{SECRET_VARIABLE.upper()}",
                         f"AIRFLOW_CONN_{LINEAGE_CONN_ID.upper()}"}
    assert all({"envName", "secretName", "secretKey"} <= set(entry) for entry in values()["secret"])
