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
