"""The local Azure: an emulator of the Azure Resource Manager API driven by the real Azure SDKs."""
