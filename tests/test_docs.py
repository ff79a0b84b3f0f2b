"""The README's lists are made from the code, so they cannot drift from it."""
from pathlib import Path

from rpm_cli.config import domain_table
from rpm_cli.reproduction import prior_names

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_lists_every_domain_as_the_validator_has_it():
    assert domain_table() in README


def test_readme_names_every_shipped_prior():
    for name in prior_names():
        assert f"| `{name}` |" in README, name


def test_pyproject_ships_every_package_of_rpm_cli():
    """A non-editable `pip install .` ships only the packages pyproject.toml lists by hand."""
    import tomllib

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "rpm_cli").rglob("__init__.py")}
    assert found <= listed, f"not shipped: {sorted(found - listed)}"
