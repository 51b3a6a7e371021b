"""One hook for every Azure Resource Manager client the factory uses, on real or local Azure.

The connection decides where ARM is. Real Azure: a service principal (login plus the ``tenantId``
extra, with a client secret as password or a ``client_certificate_path`` extra), workload identity
(AKS injects ``AZURE_FEDERATED_TOKEN_FILE``), a user-assigned managed identity
(``managed_identity_client_id`` extra), or else DefaultAzureCredential (system-assigned managed
identity, ``az login``), as docs/real-azure.md shows. Local Azure: the ``endpoint`` extra names the emulator's
ARM URL and ``ca_bundle`` the CA to trust; the service principal then signs in against the
emulator's own token endpoint, so the same SDK code paths run end to end.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.microsoft.azure.hooks.base_azure import AzureBaseHook
from azure.mgmt.core.polling.arm_polling import ARMPolling

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.compute.aio import ComputeManagementClient as AsyncComputeManagementClient
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.resource.locks import ManagementLockClient
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.mgmt.resource.resources.aio import ResourceManagementClient as AsyncResourceManagementClient

PUBLIC_ARM = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"
LOCAL_SCOPE = "https://management.core.windows.net/.default"

# credential kinds (see AzureResourceManagerHook._credential_recipe): the azure.identity class of each
CLIENT_SECRET = "ClientSecretCredential"
CLIENT_CERTIFICATE = "CertificateCredential"
WORKLOAD_IDENTITY = "WorkloadIdentityCredential"
MANAGED_IDENTITY = "ManagedIdentityCredential"
DEFAULT = "default"
FEDERATED_TOKEN_ENV = "AZURE_FEDERATED_TOKEN_FILE"  # set in a pod by AKS workload identity


@dataclass(frozen=True)
class AsyncArmClients:
    """The aio SDK clients a trigger polls with; valid only inside ``async_clients()``."""

    compute: AsyncComputeManagementClient
    resources: AsyncResourceManagementClient


class AzureResourceManagerHook(AzureBaseHook):
    """Compute, Network, Resource, Locks and Authorization clients from one Azure connection.

    Extras: ``subscriptionId``, ``tenantId``; for real Azure optionally ``client_certificate_path``
    (+ ``client_certificate_password``), ``managed_identity_client_id``, ``workload_identity_tenant_id``;
    for the local Azure ``endpoint`` and ``ca_bundle`` (a relative path is taken from the working directory).
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

    def _credential_recipe(self) -> tuple[str, dict[str, Any]]:
        """Which credential the connection asks for, and its arguments.

        One decision for the sync and the async (``azure.identity.aio``) credentials, so the triggerer
        signs in exactly as the workers do.
        """
        tenant = str(self._extras.get("tenantId") or "")
        service_principal = bool(self._conn.login and self._conn.password and tenant)
        if not self.is_local:
            return self._real_azure_recipe(tenant, service_principal)
        if service_principal:
            return CLIENT_SECRET, {
                "tenant_id": tenant,
                "client_id": self._conn.login,
                "client_secret": self._conn.password,
                "authority": self.endpoint,
                "disable_instance_discovery": True,
                "connection_verify": self.connection_verify,
            }
        # the emulator serves the managed identity endpoint; the SDK finds it through the environment
        os.environ.setdefault("IDENTITY_ENDPOINT", self.endpoint + "/msi/token")
        os.environ.setdefault("IDENTITY_HEADER", "local")
        return MANAGED_IDENTITY, {"connection_verify": self.connection_verify}

    def _real_azure_recipe(self, tenant: str, service_principal: bool) -> tuple[str, dict[str, Any]]:
        """Real Azure, first match wins: the connection's service principal (secret, then certificate),
        the pod's workload identity, a user-assigned managed identity, else DefaultAzureCredential.

        Workload identity and a user-assigned identity are built directly: the provider's
        DefaultAzureCredential helper drops ``managed_identity_client_id`` unless
        ``workload_identity_tenant_id`` is given too, and would then try other sign-ins after a failure.
        """
        login = self._conn.login
        client_id = self._extras.get("managed_identity_client_id")
        certificate = self._extras.get("client_certificate_path")
        if service_principal:
            return CLIENT_SECRET, {"tenant_id": tenant, "client_id": login, "client_secret": self._conn.password}
        if login and tenant and certificate:
            kwargs: dict[str, Any] = {"tenant_id": tenant, "client_id": login,
                                      "certificate_path": os.path.expanduser(str(certificate))}
            if self._extras.get("client_certificate_password"):
                kwargs["password"] = str(self._extras["client_certificate_password"])
            return CLIENT_CERTIFICATE, kwargs
        if os.environ.get(FEDERATED_TOKEN_ENV):
            # None falls back to AZURE_TENANT_ID / AZURE_CLIENT_ID, which AKS injects with the token file
            wi_tenant = self._extras.get("workload_identity_tenant_id") or tenant or None
            return WORKLOAD_IDENTITY, {"tenant_id": wi_tenant, "client_id": client_id or None}
        if client_id:
            return MANAGED_IDENTITY, {"client_id": str(client_id)}
        return DEFAULT, {}

    @cached_property
    def credential(self) -> TokenCredential:
        kind, kwargs = self._credential_recipe()
        if kind == DEFAULT:
            from airflow.providers.microsoft.azure.utils import get_sync_default_azure_credential

            return get_sync_default_azure_credential(**kwargs)
        import azure.identity

        kwargs["http_logging_level"] = logging.DEBUG  # token requests at DEBUG, like every other request
        return getattr(azure.identity, kind)(**kwargs)  # type: ignore[no-any-return]

    def _async_credential(self) -> AsyncTokenCredential:
        """A fresh ``azure.identity.aio`` credential; the caller closes it (see ``async_clients``)."""
        kind, kwargs = self._credential_recipe()
        if kind == DEFAULT:
            from airflow.providers.microsoft.azure.utils import get_async_default_azure_credential

            return get_async_default_azure_credential(**kwargs)
        import azure.identity.aio

        kwargs["http_logging_level"] = logging.DEBUG  # token requests at DEBUG, like every other request
        return getattr(azure.identity.aio, kind)(**kwargs)  # type: ignore[no-any-return]

    def _client_kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.endpoint,
            "credential_scopes": [LOCAL_SCOPE if self.is_local else ARM_SCOPE],
            "connection_verify": self.connection_verify,
            # every request at INFO buries a task log's own lines; the dumps stay available at DEBUG
            "http_logging_level": logging.DEBUG,
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

    # async clients (triggers) ----------------------------------------------------------
    async def aload_connection(self) -> None:
        """Read the Connection without blocking the event loop, and cache it for the properties.

        In the triggerer ``aget_connection`` asks the supervisor asynchronously (a sync
        ``get_connection`` there would block the loop); the provider's compat helper picks what this
        Airflow supports. Afterwards ``endpoint``, ``is_local`` etc. read the cache, never the network.
        """
        if "_conn" in self.__dict__ and "_extras" in self.__dict__:
            return
        from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

        conn = await get_async_connection(self.azure_conn_id, hook=self)
        extras = await get_async_extra_dejson(conn)
        self.__dict__["_conn"] = conn
        self.__dict__["_extras"] = dict(extras)

    @asynccontextmanager
    async def async_clients(self) -> AsyncIterator[AsyncArmClients]:
        """``async with hook.async_clients() as clients:`` the SDK's aio Compute and Resource clients.

        Both share one ``azure.identity.aio`` credential; leaving the block closes the clients and the
        credential (their aiohttp sessions), also when the body raised.
        """
        from azure.mgmt.compute.aio import ComputeManagementClient as AsyncComputeClient
        from azure.mgmt.resource.resources.aio import ResourceManagementClient as AsyncResourceClient

        await self.aload_connection()
        subscription_id = self.subscription_id
        # a trigger polls for an hour: its log should show progress, not every request at INFO
        client_kwargs = self._client_kwargs()
        async with AsyncExitStack() as stack:
            credential = self._async_credential()
            stack.push_async_callback(credential.close)
            compute = AsyncComputeClient(credential, subscription_id, **client_kwargs)
            stack.push_async_callback(compute.close)
            resources = AsyncResourceClient(credential, subscription_id, **client_kwargs)
            stack.push_async_callback(resources.close)
            yield AsyncArmClients(compute=compute, resources=resources)

    def lro(self) -> RetryAfterPolling:
        """Polling for a long-running operation the hook waits on: Retry-After is honoured from the first poll."""
        return RetryAfterPolling()  # one per operation: the SDK keeps the operation's state on it

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



class RetryAfterPolling(ARMPolling):  # type: ignore[misc]
    """ARM polling that also waits Retry-After before its first status request.

    azure-core asks for the status the moment an operation starts, then honours Retry-After;
    ARM asks clients not to poll sooner than Retry-After, and the factory's waits obey it.
    """

    _waited_first = False

    def update_status(self) -> None:
        if not self._waited_first:
            self._waited_first = True
            self._delay()
        super().update_status()
