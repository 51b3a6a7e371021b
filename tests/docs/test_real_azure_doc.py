"""docs/real-azure.md stays true: its test list is the tests marked ``azure``, and its Key Vault secret
names are the ones Airflow's AzureKeyVaultBackend looks up for the connection and Variable the code uses."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "real-azure.md"
TEST_ROW = re.compile(r"^\| `(tests/[^`]+\.py)` \|", re.MULTILINE)
SECRET_ROW = re.compile(r"^\| `(\w+)` \| (connection|variable) \| `([^`]+)` \|", re.MULTILINE)


def section(title: str) -> str:
    """The doc's text from the ``## title`` heading to the next ``## `` heading."""
    text = DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def files_with_azure_tests() -> set[str]:
    """What pytest itself collects with ``-m azure`` (marks may be module-level, aliased or per test),
    from the files that mention the mark at all."""
    candidates = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
                        if "mark.azure" in p.read_text())
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "azure",
                          "-p", "no:cacheprovider", *candidates],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return {line.split("::", 1)[0] for line in out.stdout.splitlines() if "::" in line}


def test_the_doc_lists_exactly_the_files_with_tests_marked_azure() -> None:
    listed = TEST_ROW.findall(section("Tests against a real subscription"))
    assert len(listed) == len(set(listed)), "a file is listed twice"
    collected = files_with_azure_tests()
    assert collected, "no test marked azure was collected"
    assert sorted(collected - set(listed)) == [], "marked azure but missing from docs/real-azure.md"
    assert sorted(set(listed) - collected) == [], "listed in docs/real-azure.md but has no test marked azure"


def test_key_vault_secret_names_are_what_the_backend_builds() -> None:
    keyvault = section("Secrets from Azure Key Vault")
    backend_path = re.search(r"^backend = (\S+)$", keyvault, re.MULTILINE)
    kwargs_json = re.search(r"^backend_kwargs = (\{.*\})$", keyvault, re.MULTILINE)
    assert backend_path and kwargs_json, "the [secrets] backend / backend_kwargs lines are gone"
    module, _, cls = backend_path.group(1).rpartition(".")
    backend_cls = getattr(importlib.import_module(module), cls)
    backend = backend_cls(**json.loads(kwargs_json.group(1)))  # builds no client: no network

    rows = SECRET_ROW.findall(keyvault)
    prefixes = {"connection": backend.connections_prefix, "variable": backend.variables_prefix}
    for airflow_id, kind, documented in rows:
        assert backend.build_path(prefixes[kind], airflow_id, backend.sep) == documented, airflow_id

    from image_factory.hooks.lineage import LINEAGE_CONN_ID
    from image_factory.operators.base import DEFAULT_CONN_ID
    from image_factory.pipeline.build import SECRET_VARIABLE

    documented_ids = {(airflow_id, kind) for airflow_id, kind, _ in rows}
    assert documented_ids >= {(DEFAULT_CONN_ID, "connection"), (SECRET_VARIABLE, "variable"),
                              (LINEAGE_CONN_ID, "connection")}
