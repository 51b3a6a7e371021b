"""NTLM logons for the simulated Windows guest's WinRM, with pyspnego as the acceptor.

pyspnego's NTLM acceptor looks accounts up in the file named by ``NTLM_USER_FILE`` (one per
process). A guest instead answers from its own SAM (the NT hashes on its disk), so this module
routes pyspnego's credential lookup through a context variable set for the duration of one
``step``; without it pyspnego behaves as before. Tested against pyspnego 0.12: if a later
version moves these internals, NTLM logons fail and Basic authentication keeps working.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.guests.simulated.runtime import Guest

Lookup = Callable[[str | None, str | None], tuple[str | None, str | None, bytes, bytes]]
_LOOKUP: contextvars.ContextVar[Lookup | None] = contextvars.ContextVar("simulated_ntlm_lookup", default=None)
_MARKER = "<simulated guest SAM>"
_installed = False
_install_lock = threading.Lock()


def _install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        from spnego import _ntlm

        original_file = _ntlm._get_credential_file
        original_get = _ntlm._get_credential

        def credential_file() -> str | None:
            return _MARKER if _LOOKUP.get() is not None else original_file()

        def get_credential(store: str | None, domain: str | None = None,
                           username: str | None = None) -> tuple[str | None, str | None, bytes, bytes]:
            lookup = _LOOKUP.get()
            if store == _MARKER and lookup is not None:
                return lookup(domain, username)
            return original_get(store, domain, username)

        _ntlm._get_credential_file = credential_file
        _ntlm._get_credential = get_credential
        _installed = True


@contextlib.contextmanager
def _using(lookup: Lookup) -> Iterator[None]:
    token = _LOOKUP.set(lookup)
    try:
        yield
    finally:
        _LOOKUP.reset(token)


class Acceptor:
    """One NTLM security context for one WinRM connection."""

    def __init__(self, guest: Guest) -> None:
        import spnego

        _install()
        self.guest = guest
        with _using(self._lookup):
            self.ctx: Any = spnego.server(protocol="ntlm")

    def _lookup(self, domain: str | None, username: str | None) -> tuple[str | None, str | None, bytes, bytes]:
        from spnego.exceptions import ErrorCode, SpnegoError

        nt_hash = self.guest.windows_nt_hash(username or "")
        if nt_hash is None:
            raise SpnegoError(ErrorCode.failure, context_msg=f"unknown user {username!r} on the simulated guest")
        return domain, username, b"\0" * 16, nt_hash

    def step(self, token: bytes) -> bytes | None:
        with _using(self._lookup):
            out = self.ctx.step(token)
        return bytes(out) if out else None

    @property
    def complete(self) -> bool:
        return bool(self.ctx.complete)

    @property
    def client_principal(self) -> str | None:
        value = self.ctx.client_principal
        return str(value) if value else None

    def wrap(self, data: bytes, encrypt: bool = True) -> Any:
        return self.ctx.wrap(data, encrypt=encrypt)

    def unwrap(self, data: bytes) -> Any:
        return self.ctx.unwrap(data)


def accept(guest: Guest) -> Acceptor:
    return Acceptor(guest)
