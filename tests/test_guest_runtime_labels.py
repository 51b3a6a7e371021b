"""Each test says which guest runtime it used, and the label is what the emulator reports, not a claim.

The emulator's health names its Linux guest runtime; tests/conftest.py reads it for every local
Azure a test used, records it as the test's ``guest_runtime`` property (junit XML, ``-v``) and fails
a test marked ``guests(...)`` that ran on another runtime.
"""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.localazure import LocalAzure

pytest_plugins = ["pytester"]


def test_health_reports_the_runtime_the_session_emulator_was_configured_with(local_azure: LocalAzure) -> None:
    health = local_azure.ops("GET", "health")
    assert health["linuxGuestRuntime"] in ("simulated", "qemu")
    assert health["linuxGuestRuntime"] == local_azure.linux_runtime == local_azure.configured_linux_runtime


def test_labels_come_from_the_emulator_used_and_a_wrong_marker_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOCAL_AZURE_LINUX_RUNTIME", raising=False)  # the inner session's emulator: simulated
    pytester.makeconftest(f"""
        import sys
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "plugins")!r}]
        from tests.conftest import *  # noqa: F403 - the project's fixtures and hooks
    """)
    pytester.makepyfile(
        test_inner=textwrap.dedent("""
        import pytest

        @pytest.mark.guests("simulated")
        def test_right(local_azure):
            assert local_azure.linux_runtime == "simulated"

        @pytest.mark.guests("qemu")
        def test_wrong(local_azure):
            pass

        def test_unmarked(local_azure):
            pass

        def test_no_emulator():
            pass
    """)
    )
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider", f"--junitxml={junit}", timeout=300)

    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "guest runtime of the session emulator: Linux simulated, Windows simulated (LOCAL_AZURE_LINUX_RUNTIME=unset)",
            "*::test_right PASSED [[]guests: simulated[]]*",
            "*::test_wrong FAILED [[]guests: simulated[]]*",
            "*::test_unmarked PASSED [[]guests: simulated[]]*",
            "*::test_no_emulator PASSED*",
            "*marked guests('qemu',) but ran on simulated guests*",
        ]
    )
    assert properties(junit) == {
        "test_right": {"guest_runtime": "simulated"},
        "test_wrong": {"guest_runtime": "simulated"},
        "test_unmarked": {"guest_runtime": "simulated"},
        "test_no_emulator": {},
    }


def properties(junit: Path) -> dict[str, dict[str, str]]:
    cases = ET.parse(junit).getroot().iter("testcase")
    return {case.attrib["name"]: {p.attrib["name"]: p.attrib["value"] for p in case.iter("property")} for case in cases}
