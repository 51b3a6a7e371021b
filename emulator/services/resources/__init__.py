"""Microsoft.Resources: subscriptions, resource groups, generic resource listing, operation status."""
