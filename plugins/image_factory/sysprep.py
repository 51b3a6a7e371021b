"""Windows generalize: what the guest's ImageState says to do next, and when to look again.

Pure (no Airflow, no I/O), so the decisions are tested on their own. Sysprep ``/generalize /oobe
/quit`` returns at once and works on for minutes; Windows records its progress in ImageState
(HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State): IMAGE_STATE_COMPLETE on a
deployed machine, IMAGE_STATE_UNDEPLOYABLE while it generalizes, then
IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE when the disk may be captured.
"""

from __future__ import annotations

from image_factory.errors import PermanentError

COMPLETE = "IMAGE_STATE_COMPLETE"
UNDEPLOYABLE = "IMAGE_STATE_UNDEPLOYABLE"
GENERALIZED = "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
# Still on the way to GENERALIZED: not begun yet (sysprep.exe starts its work a moment after it returns), or under way.
ON_THE_WAY = frozenset({COMPLETE, UNDEPLOYABLE})

TIMEOUT_SECONDS = 1800.0
FIRST_POLL_SECONDS = 5.0  # no sooner: Airflow 3.3 can fail a try whose trigger fires right after it deferred
LONGEST_POLL_SECONDS = 60.0


class SysprepError(PermanentError):
    """Sysprep left the guest in a state it cannot be captured from, or did not finish in time."""


def must_start(image_state: str) -> bool:
    """Whether a try starts sysprep: only on a deployed machine, never when an earlier try already ran it.

    Any state but COMPLETE means sysprep ran (or runs): starting it again would only fail on the
    guest, and a state that is neither on the way nor done is refused by ``done`` below.
    """
    return image_state == COMPLETE


def done(image_state: str) -> bool:
    """True once the guest may be shut down and captured; raises for a state that waiting cannot fix."""
    if image_state == GENERALIZED:
        return True
    if image_state in ON_THE_WAY:
        return False
    raise SysprepError(f"sysprep left ImageState {image_state or '(empty)'}, not {GENERALIZED}: the disk cannot be "
                       r"captured as a generalized image (see C:\Windows\System32\Sysprep\Panther\setuperr.log)")


def next_poll(image_state: str, *, elapsed: float, polls: int, timeout: float = TIMEOUT_SECONDS,
              first: float = FIRST_POLL_SECONDS, longest: float = LONGEST_POLL_SECONDS) -> float:
    """Seconds until ImageState is read again: ``first``, doubling per poll up to ``longest`` (a quick sysprep
    is seen soon, a slow one costs few polls), and no later than the deadline unless that is under ``first``
    away. Raises once ``elapsed`` (since sysprep started, carried across deferrals) reaches ``timeout``."""
    if elapsed >= timeout:
        raise SysprepError(f"sysprep did not reach {GENERALIZED} within {timeout:.0f} s "
                           f"(ImageState is {image_state or '(empty)'} after {elapsed:.0f} s)")
    backoff = min(longest, first * 2 ** min(max(polls, 0), 16))
    return max(first, min(backoff, timeout - elapsed))
