"""Running the Azure CLI (azure-cli in .venv-az, installed by scripts/install-az.sh) from tests."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.localazure import ROOT

AZ_VENV = Path(os.environ.get("AZ_VENV", ROOT / ".venv-az"))
AZ = AZ_VENV / "bin" / "az"
AZ_LOCAL = ROOT / "scripts" / "az-local"
# CI installs the CLI (./factory test runs scripts/install-az.sh); a bare checkout may not have it.
needs_az = pytest.mark.skipif(not AZ.exists(), reason=f"azure-cli is not installed in {AZ_VENV}: run scripts/install-az.sh")


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class AzCli:
    """Runs a command line (``scripts/az-local`` or az itself) with a fixed environment."""

    argv0: list[str]
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 180) -> Result:
        proc = subprocess.run([*self.argv0, *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str) -> Any:
        """Run, require exit 0, and return the JSON az printed (None when it printed nothing)."""
        res = self.run(*args)
        assert res.rc == 0, f"az {' '.join(args)} exited {res.rc}:\n{res.stderr[-3000:]}"
        return res.json if res.stdout.strip() else None


def clean_env() -> dict[str, str]:
    """This process's environment without anything that would point az (or its TLS) elsewhere."""
    drop = ("AZURE_", "ARM_", "IDENTITY_", "MSI_", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "LOCAL_AZURE_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}
