import os

import pytest
from hypothesis import HealthCheck, settings

from tests.helpers import compose_cfg

# Property-based tests draw the same examples on every run of the same commit (`ci`, the default), so the
# suite cannot pass or fail by chance; `explore` (`make fuzz`) draws fresh, many more examples each run and
# keeps what it falsifies in .hypothesis/ for the next run. Per-test `@settings` keep their example counts
# in `ci`; in `explore` every count is multiplied by EXPLORE_FACTOR (see tests/helpers.py: examples()).
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", derandomize=False, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def tiny_cfg(tmp_path):
    return lambda *overrides: compose_cfg(overrides, tmp_path=tmp_path)


@pytest.fixture(scope="session")
def rpm_available():
    from shutil import which

    if which("rpm") is None:
        pytest.fail("the `rpm` script is not installed: run `make install`")
    return True
