"""What every step of one run shares: the definition, the plan, the hooks and the run's credentials.

Built afresh in each task (and each retry) from primitives: the image name, the plan from XCom,
the connection id and the build secret. Credentials are derived here, registered with Airflow's
secret masker, and never returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from image_factory.credentials import SshKeyPair, ssh_key_pair, windows_password
from image_factory.definitions import ImageDefinition, load_file
from image_factory.naming import RunNames

if TYPE_CHECKING:
    from image_factory.hooks.compute import ComputeHook
    from image_factory.hooks.gallery import GalleryHook
    from image_factory.hooks.network import NetworkHook
    from image_factory.hooks.resources import ResourceGroupHook

INCLUDE = Path(__file__).resolve().parents[3] / "include"
SECRET_VARIABLE = "image_factory_build_secret"


def include_dir() -> Path:
    """include/ next to plugins/ (the Astro layout); IMAGE_FACTORY_INCLUDE overrides it."""
    import os

    return Path(os.environ.get("IMAGE_FACTORY_INCLUDE") or INCLUDE)


def load_definition(name: str) -> ImageDefinition:
    folder = include_dir() / "images"
    return load_file(folder / f"{name}.yaml", label=f"images/{name}.yaml")


def build_secret() -> str:
    """The factory's build secret, kept by Airflow (a Variable, encrypted at rest)."""
    from airflow.sdk import Variable

    try:
        secret = Variable.get(SECRET_VARIABLE)
    except Exception as exc:  # Airflow raises its own not-found type; the message is what matters
        raise RuntimeError(
            f"Airflow Variable {SECRET_VARIABLE!r} is not set: the factory derives each run's SSH keys and "
            "passwords from it. Set it once (e.g. `airflow variables set image_factory_build_secret "
            "$(openssl rand -hex 32)`); `./factory run` does this for you."
        ) from exc
    return str(secret)


def mask(*values: str) -> None:
    from airflow.sdk.log import mask_secret

    for value in values:
        mask_secret(value)


@dataclass
class Build:
    """One run of one image definition, as seen from inside a task."""

    definition: ImageDefinition
    plan: dict[str, Any]
    azure_conn_id: str
    secret: str

    @classmethod
    def from_task(cls, plan: dict[str, Any], azure_conn_id: str) -> Build:
        return cls(load_definition(plan["image"]), plan, azure_conn_id, build_secret())

    # names and credentials ------------------------------------------------------
    @cached_property
    def names(self) -> RunNames:
        return RunNames(image=self.plan["image"], digest=self.plan["digest"])

    @property
    def run_key(self) -> str:
        return f"{self.plan['dag_id']}/{self.plan['run_id']}"

    @property
    def resource_group(self) -> str:
        return str(self.plan["resource_group"])

    @property
    def windows(self) -> bool:
        return self.definition.windows

    def ssh_keys(self, role: str = "build") -> SshKeyPair:
        pair = ssh_key_pair(self.secret, self.run_key, role)
        mask(pair.private_openssh)
        return pair

    def password(self, role: str = "build") -> str:
        value = windows_password(self.secret, self.run_key, role)
        mask(value)
        return value

    # hooks -----------------------------------------------------------------------
    @cached_property
    def groups(self) -> ResourceGroupHook:
        from image_factory.hooks.resources import ResourceGroupHook

        return ResourceGroupHook(self.azure_conn_id)

    @cached_property
    def network(self) -> NetworkHook:
        from image_factory.hooks.network import NetworkHook

        return NetworkHook(self.azure_conn_id)

    @cached_property
    def compute(self) -> ComputeHook:
        from image_factory.hooks.compute import ComputeHook

        return ComputeHook(self.azure_conn_id)

    @cached_property
    def gallery(self) -> GalleryHook:
        from image_factory.hooks.gallery import GalleryHook

        return GalleryHook(self.azure_conn_id)

    @property
    def is_local(self) -> bool:
        return bool(self.compute.is_local)
