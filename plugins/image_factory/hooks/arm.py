"""One hook for every Azure Resource Manager client the factory uses, on real or local Azure.

The connection decides where ARM is. Real Azure: a service principal (login/password plus the
``tenantId`` extra) or, without one, DefaultAzureCredential, exactly as the microsoft-azure
provider's AzureBaseHook resolves them. Local Azure: the ``endpoint`` extra names the emulator's
ARM URL and ``ca_bundle`` the CA to trust; the service principal then signs in against the
emulator's own token endpoint, so the same SDK code paths run end to end.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.microsoft.azure.hooks.base_azure import AzureBaseHook

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.resource.locks import ManagementLockClient
    from azure.mgmt.resource.resources import ResourceManagementClient

PUBLIC_ARM = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"
LOCAL_SCOPE = "https://management.core.windows.net/.default"


class AzureResourceManagerHook(AzureBaseHook):
    """Compute, Network, Resource, Locks and Authorization clients from one Azure connection.

    Extras: ``subscriptionId``, ``tenantId``; for the local Azure also ``endpoint`` and
    ``ca_bundle`` (a relative path is taken from the working directory).
    """

    conn_name_attr = "azure_conn_id"
    default_conn_name = "azure_default"
    conn_type = "azure"
    hook_name = "Azure Resource Manager (image factory)"

    def __init__(self, azure_conn_id: str = default_conn_name) -> None:
        super().__init__(sdk_client=None, conn_id=azure_conn_id)
        self.azure_conn_id = azure_conn_id

    # connection ---------------------------------------------------------------
    @cached_property
    def _conn(self) -> Any:
        return self.get_connection(self.azure_conn_id)

    @cached_property
    def _extras(self) -> dict[str, Any]:
        return dict(self._conn.extra_dejson)

    @property
    def endpoint(self) -> str:
        return str(self._extras.get("endpoint") or PUBLIC_ARM).rstrip("/")

    @property
    def is_local(self) -> bool:
        return bool(self._extras.get("endpoint"))

    @property
    def subscription_id(self) -> str:
        sub = self._extras.get("subscriptionId")
        if not sub:
            raise ValueError(f"Connection '{self.azure_conn_id}': extra 'subscriptionId' is required.")
        return str(sub)

    @property
    def connection_verify(self) -> str | bool:
        ca = self._extras.get("ca_bundle")
        if not ca:
            return True
        path = os.path.abspath(os.path.expanduser(str(ca)))
        if not os.path.exists(path):
            raise ValueError(f"Connection '{self.azure_conn_id}': extra 'ca_bundle' file {ca!r} does not exist.")
        return path

    @cached_property
    def credential(self) -> TokenCredential:
        from azure.identity import ClientSecretCredential, ManagedIdentityCredential

        tenant = str(self._extras.get("tenantId") or "")
        if not self.is_local:
            if self._conn.login and self._conn.password and tenant:
                return ClientSecretCredential(tenant, self._conn.login, self._conn.password)
            from airflow.providers.microsoft.azure.utils import get_sync_default_azure_credential

            return get_sync_default_azure_credential(
                managed_identity_client_id=self._extras.get("managed_identity_client_id"),
                workload_identity_tenant_id=self._extras.get("workload_identity_tenant_id"),
            )
        if self._conn.login and self._conn.password and tenant:
            return ClientSecretCredential(
                tenant_id=tenant,
                client_id=self._conn.login,
                client_secret=self._conn.password,
                authority=self.endpoint,
                disable_instance_discovery=True,
                connection_verify=self.connection_verify,
            )
        os.environ.setdefault("IDENTITY_ENDPOINT", self.endpoint + "/msi/token")
        os.environ.setdefault("IDENTITY_HEADER", "local")
        return ManagedIdentityCredential(connection_verify=self.connection_verify)

    def _client_kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.endpoint,
            "credential_scopes": [LOCAL_SCOPE if self.is_local else ARM_SCOPE],
            "connection_verify": self.connection_verify,
        }

    # clients ------------------------------------------------------------------
    @cached_property
    def compute(self) -> ComputeManagementClient:
        from azure.mgmt.compute import ComputeManagementClient

        return ComputeManagementClient(self.credential, self.subscription_id, **self._client_kwargs())

    @cached_property
    def network(self) -> NetworkManagementClient:
        from azure.mgmt.network import NetworkManagementClient

        return NetworkManagementClient(self.credential, self.subscription_id, **self._client_kwargs())

    @cached_property
    def resources(self) -> ResourceManagementClient:
        from azure.mgmt.resource.resources import ResourceManagementClient

        return ResourceManagementClient(self.credential, self.subscription_id, **self._client_kwargs())

    @cached_property
    def locks(self) -> ManagementLockClient:
        from azure.mgmt.resource.locks import ManagementLockClient

        return ManagementLockClient(self.credential, self.subscription_id, **self._client_kwargs())

    @cached_property
    def authorization(self) -> AuthorizationManagementClient:
        from azure.mgmt.authorization import AuthorizationManagementClient

        return AuthorizationManagementClient(self.credential, self.subscription_id, **self._client_kwargs())

    def get_conn(self) -> ComputeManagementClient:
        return self.compute

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button: can we sign in and read the subscription?"""
        try:
            sub = self.resources.resource_groups.list()
            next(iter(sub), None)
        except Exception as exc:  # the button reports any failure as text
            return False, f"{type(exc).__name__}: {exc}"
        where = "local Azure at " + self.endpoint if self.is_local else "Azure"
        return True, f"Signed in to {where}, subscription {self.subscription_id}."
