"""Test-wide settings.

Under CI (``CI`` set, as the CI service and ``.ci/run`` do) Hypothesis
draws the same examples on every run, so a merge is never failed by an
example no earlier run tried; failures found by the random search of
local runs become ``@example``s of their tests. Locally the search stays
random and keeps exploring.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")
