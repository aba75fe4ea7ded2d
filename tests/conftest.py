"""Shared pytest configuration."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

# tests/pair.py and friends are imported as plain modules.
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Timing-based health checks and deadlines are noise on a shared 2-core CI box;
# correctness properties are what these tests are for.
settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))


# Tests marked ``interop`` need real peers (Postfix, swaks, msmtp, openssl).
# Locally they may skip with their reason; where SMTPPROTO_REQUIRE_PEERS=1 (CI,
# which installs the peers in .ci/install-peers) a skip is a failure.
import pytest  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if (
        report.skipped
        and os.environ.get("SMTPPROTO_REQUIRE_PEERS") == "1"
        and item.get_closest_marker("interop") is not None
        and not hasattr(report, "wasxfail")
    ):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"interop test skipped where peers are required: {reason}"
