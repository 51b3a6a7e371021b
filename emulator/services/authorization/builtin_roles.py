"""The built-in Azure roles the factory and its users refer to, with their real ids and names.

Role definition ids are the same GUIDs in every Azure tenant, so code written against real Azure
(``.../roleDefinitions/b24988ac-...`` for Contributor) works here unchanged. Permissions are the
documented ones, trimmed to the provider namespaces this emulator serves.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BuiltinRole:
    id: str
    name: str
    description: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = field(default=())
    created_on: str = "2015-02-02T21:55:09.8806423Z"
    updated_on: str = "2024-01-12T16:52:31.9361665Z"


OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-46fb-8e9e-05fd3ac6e3f8"
VIRTUAL_MACHINE_CONTRIBUTOR = "9980e02c-c2be-4d73-94e8-173b1dc7cf3c"
COMPUTE_GALLERY_SHARING_ADMIN = "1ef6a3be-d0ac-425d-8c01-acb62866290b"

ROLES: dict[str, BuiltinRole] = {
    r.id: r
    for r in (
        BuiltinRole(
            OWNER, "Owner",
            "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
            ("*",),
        ),
        BuiltinRole(
            CONTRIBUTOR, "Contributor",
            "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, "
            "manage assignments in Azure Blueprints, or share image galleries.",
            ("*",),
            (
                "Microsoft.Authorization/*/Delete",
                "Microsoft.Authorization/*/Write",
                "Microsoft.Authorization/elevateAccess/Action",
                "Microsoft.Blueprint/blueprintAssignments/write",
                "Microsoft.Blueprint/blueprintAssignments/delete",
                "Microsoft.Compute/galleries/share/action",
                "Microsoft.Purview/consents/write",
                "Microsoft.Purview/consents/delete",
                "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
                "Microsoft.Subscription/cancel/action",
                "Microsoft.Subscription/enable/action",
            ),
        ),
        BuiltinRole(
            READER, "Reader", "View all resources, but does not allow you to make any changes.", ("*/read",),
        ),
        BuiltinRole(
            USER_ACCESS_ADMINISTRATOR, "User Access Administrator", "Lets you manage user access to Azure resources.",
            ("*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"),
        ),
        BuiltinRole(
            VIRTUAL_MACHINE_CONTRIBUTOR, "Virtual Machine Contributor",
            "Create and manage virtual machines, manage disks, install and run software, reset password of the "
            "root user of the virtual machine using VM extensions, and manage local user accounts using VM "
            "extensions. This role does not grant you management access to the virtual network or storage "
            "account the virtual machines are connected to. This role does not allow you to assign roles in "
            "Azure RBAC.",
            (
                "Microsoft.Authorization/*/read",
                "Microsoft.Compute/availabilitySets/*",
                "Microsoft.Compute/locations/*",
                "Microsoft.Compute/virtualMachines/*",
                "Microsoft.Compute/virtualMachineScaleSets/*",
                "Microsoft.Compute/disks/write",
                "Microsoft.Compute/disks/read",
                "Microsoft.Compute/disks/delete",
                "Microsoft.Network/networkInterfaces/*",
                "Microsoft.Network/networkSecurityGroups/join/action",
                "Microsoft.Network/networkSecurityGroups/read",
                "Microsoft.Network/publicIPAddresses/join/action",
                "Microsoft.Network/publicIPAddresses/read",
                "Microsoft.Network/virtualNetworks/read",
                "Microsoft.Network/virtualNetworks/subnets/join/action",
                "Microsoft.ResourceHealth/availabilityStatuses/read",
                "Microsoft.Resources/deployments/*",
                "Microsoft.Resources/subscriptions/resourceGroups/read",
                "Microsoft.Storage/storageAccounts/listKeys/action",
                "Microsoft.Storage/storageAccounts/read",
                "Microsoft.Support/*",
            ),
            created_on="2015-06-02T00:18:27.3542698Z",
        ),
        BuiltinRole(
            COMPUTE_GALLERY_SHARING_ADMIN, "Compute Gallery Sharing Admin",
            "This role allows user to share gallery to another subscription/tenant or share it to the public.",
            (
                "Microsoft.Compute/galleries/share/action",
                "Microsoft.Compute/galleries/images/read",
                "Microsoft.Compute/galleries/images/versions/read",
                "Microsoft.Compute/galleries/read",
                "Microsoft.Resources/subscriptions/resourceGroups/read",
            ),
            created_on="2022-08-30T16:59:46.4436432Z",
        ),
    )
}
