"""Microsoft.Authorization: management locks, role definitions and role assignments."""
