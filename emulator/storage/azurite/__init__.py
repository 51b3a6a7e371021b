"""Azurite (Microsoft's Azure Storage emulator, an npm package installed here) serves the blob data of storage accounts."""
