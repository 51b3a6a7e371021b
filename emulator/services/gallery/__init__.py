"""Azure Compute Gallery: galleries, image definitions, image versions and their regional replication."""
