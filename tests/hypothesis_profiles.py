"""Hypothesis settings profiles for the property tests of parsers of untrusted bytes.

``default`` keeps the normal suite fast (a few dozen examples per property); ``long`` is the
fuzzing run: ``pytest -m fuzz --hypothesis-profile=long`` or ``MVTUI_FUZZ=long pytest -m fuzz``.
The deadline is per example: a parser that is slow on some input fails here, not on a host.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

# The machine is shared (2 cores, many jobs): the per-example deadline is generous; a real
# blow-up (quadratic on a 1 MiB script, a hang) is far beyond it.
_DEADLINE = timedelta(seconds=2)

settings.register_profile(
    "default",
    max_examples=30,
    deadline=_DEADLINE,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
    derandomize=True,
)
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=_DEADLINE,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("MVTUI_FUZZ", "default"))
