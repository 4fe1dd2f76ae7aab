"""Test-suite settings: Hypothesis draws the same examples on every run unless asked to explore.

``HYPOTHESIS_PROFILE=explore`` draws new random examples on each run, for fuzzing beyond the fixed ones.
"""

import os

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# Kernels compile in the test process on first use, so a test that compares them with the torch path runs them
# at once (tests/test_first_use.py covers the background compile).
os.environ.setdefault("RECSTACK_COMPILE", "wait")
