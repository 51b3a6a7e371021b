#!/usr/bin/env bash
# Install the Azure CLI into its own venv (.venv-az): its pins conflict with Airflow's, so it
# never shares .venv. Idempotent: does nothing when the pinned version is already there.
set -euo pipefail

AZ_VERSION="${AZ_VERSION:-2.91.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AZ_VENV:-$ROOT/.venv-az}"
PYTHON="${PYTHON:-python3}"

installed_version() {
    [ -x "$VENV/bin/python" ] || return 1
    "$VENV/bin/python" - <<'PY' 2>/dev/null
from importlib.metadata import version
print(version("azure-cli"))
PY
}

if [ "$(installed_version || true)" = "$AZ_VERSION" ] && [ -x "$VENV/bin/az" ]; then
    echo "azure-cli $AZ_VERSION already installed in $VENV"
    exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "azure-cli==$AZ_VERSION"
echo "azure-cli $(installed_version) installed in $VENV"
