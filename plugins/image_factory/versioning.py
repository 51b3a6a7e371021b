"""Gallery image version numbers: Major.Minor.Patch, each part an int32, never reused (pure).

The next version comes from what is in the gallery, so two factories (or a re-run after a lost
XCom) agree on it. A version a previous try of the same run created is reused, never bumped
again; a version that ended Failed is replaced (deleted, then created again) and never updated
in place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

INT32_MAX = 2_147_483_647
BUMPS = ("patch", "minor", "major")


class VersionError(ValueError):
    """A version that breaks a rule; the message names the rule."""


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str, *, field: str = "version") -> Version:
        parts = text.split(".") if isinstance(text, str) else []
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise VersionError(f"{field}: must be Major.Minor.Patch with whole numbers (got {text!r})")
        numbers = [int(p) for p in parts]
        if any(n > INT32_MAX for n in numbers):
            raise VersionError(f"{field}: each part must be at most {INT32_MAX} (a 32-bit integer; got {text!r})")
        return cls(*numbers)

    def bump(self, part: str) -> Version:
        if part == "major":
            nxt = Version(self.major + 1, 0, 0)
        elif part == "minor":
            nxt = Version(self.major, self.minor + 1, 0)
        elif part == "patch":
            nxt = Version(self.major, self.minor, self.patch + 1)
        else:
            raise VersionError(f"bump: must be one of {', '.join(BUMPS)} (got {part!r})")
        if max(nxt.major, nxt.minor, nxt.patch) > INT32_MAX:
            raise VersionError(f"bump: {self} has no next {part} version within 32-bit parts; bump a higher part")
        return nxt

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class Existing:
    """A version already in the gallery: its name, state and the run that made it (from its tags)."""

    name: str
    provisioning_state: str = "Succeeded"
    run_id: str | None = None


@dataclass(frozen=True)
class VersionDecision:
    version: str
    reused: bool  # an earlier try of this run already created it
    replace_failed: bool  # a Failed version of that name exists and must be deleted first


def next_version(existing: Iterable[Existing], *, run_id: str, override: str | None = None,
                 bump: str = "patch", first: str = "1.0.0") -> VersionDecision:
    """The version this run publishes."""
    versions = list(existing)
    for v in versions:
        if v.run_id == run_id:
            return VersionDecision(v.name, reused=v.provisioning_state != "Failed",
                                   replace_failed=v.provisioning_state == "Failed")
    parsed = [Version.parse(v.name, field=f"existing version {v.name!r}") for v in versions]
    newest = max(parsed, default=None)
    if override:
        wanted = Version.parse(override, field="version")
        if newest is not None and wanted <= newest:
            raise VersionError(f"version: must be greater than the newest version in the gallery, {newest} "
                               f"(got {wanted})")
        return VersionDecision(str(wanted), reused=False, replace_failed=False)
    if newest is None:
        return VersionDecision(str(Version.parse(first, field="first version")), reused=False, replace_failed=False)
    return VersionDecision(str(newest.bump(bump)), reused=False, replace_failed=False)
