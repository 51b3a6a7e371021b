"""The Windows generalize decisions: start sysprep once, wait while ImageState is on the way, back off, give up."""

from __future__ import annotations

import pytest

from image_factory.errors import is_transient
from image_factory.sysprep import (
    COMPLETE,
    GENERALIZED,
    UNDEPLOYABLE,
    SysprepError,
    done,
    must_start,
    next_poll,
)


def test_sysprep_starts_only_on_a_deployed_machine() -> None:
    assert must_start(COMPLETE)
    for ran in (UNDEPLOYABLE, GENERALIZED, "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE"):
        assert not must_start(ran), f"a retried try would start sysprep again over {ran}"


def test_done_waits_on_the_way_and_refuses_states_waiting_cannot_fix() -> None:
    assert done(GENERALIZED)
    assert not done(UNDEPLOYABLE) and not done(COMPLETE)
    for wrong in ("IMAGE_STATE_GENERALIZE_RESEAL_TO_AUDIT", "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE", ""):
        with pytest.raises(SysprepError, match="cannot be captured") as caught:
            done(wrong)
        assert not is_transient(caught.value)  # a final failure, not retried


def test_polls_back_off_from_the_first_interval_to_the_longest() -> None:
    delays = [next_poll(UNDEPLOYABLE, elapsed=10.0, polls=n, first=5.0, longest=60.0) for n in range(6)]
    assert delays == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    assert next_poll(UNDEPLOYABLE, elapsed=0.0, polls=10_000, first=5.0, longest=60.0) == 60.0


def test_the_last_poll_lands_on_the_deadline_and_past_it_the_wait_fails() -> None:
    assert next_poll(UNDEPLOYABLE, elapsed=1780.0, polls=9, timeout=1800.0, first=5.0, longest=60.0) == 20.0
    assert next_poll(UNDEPLOYABLE, elapsed=1798.0, polls=9, timeout=1800.0, first=5.0, longest=60.0) == 5.0
    with pytest.raises(SysprepError, match=r"within 1800 s \(ImageState is IMAGE_STATE_UNDEPLOYABLE after 1800 s\)"):
        next_poll(UNDEPLOYABLE, elapsed=1800.0, polls=10, timeout=1800.0)
