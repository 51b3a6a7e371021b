"""Microsoft.Storage: storage accounts and blob containers in ARM, their blob data served by Azurite."""
