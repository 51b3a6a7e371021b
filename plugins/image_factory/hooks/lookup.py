"""Reading an ARM resource that may not exist, without hiding any other error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def get_or_none(read: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``read(*args)``, or None when ARM answers 404: "absent" is an answer, every other error propagates."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return read(*args, **kwargs)
    except ResourceNotFoundError:
        return None
