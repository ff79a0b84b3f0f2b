import pytest

from tests.helpers import compose_cfg


@pytest.fixture
def tiny_cfg(tmp_path):
    return lambda *overrides: compose_cfg(overrides, tmp_path=tmp_path)


@pytest.fixture(scope="session")
def rpm_available():
    from shutil import which

    if which("rpm") is None:
        pytest.fail("the `rpm` script is not installed: run `make install`")
    return True
