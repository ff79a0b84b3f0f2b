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
