"""settings.example.toml: every setting with its default, one line each, checked against PlatformSettings itself
(its fields and the per-environment defaults), so a new setting or a changed default fails here until the example
follows."""

from __future__ import annotations

import re
import tomllib

import pytest

from deepsentinel.settings import DEFAULTS, ENVIRONMENTS, FIELDS, load_settings
from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "settings.example.toml"
# `key = value  # what it does`, or a table header with its comment ([tags] is the setting `tags`).
SETTING_LINE = re.compile(r"^(?P<key>\w+) = (?P<value>.+?)  # (?P<meaning>\S.*)$")
TABLE_LINE = re.compile(r"^\[(?P<table>\w+)\](  # (?P<meaning>\S.*))?$")


def example() -> dict:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def test_every_setting_is_in_the_example_and_nothing_else():
    document = example()
    everywhere = {key for key in document if key not in ENVIRONMENTS}
    per_environment = {environment: set(document[environment]) for environment in ENVIRONMENTS}
    assert per_environment["dev"] == per_environment["prod"], "a setting given per environment is given for both"
    assert not everywhere & per_environment["dev"], "a setting is either top-level or per environment"
    given = everywhere | per_environment["dev"]
    assert not set(FIELDS) - given, f"settings missing from {EXAMPLE.name}: {sorted(set(FIELDS) - given)}"
    assert not given - set(FIELDS), f"{EXAMPLE.name} names what is no setting: {sorted(given - set(FIELDS))}"


def test_settings_that_differ_by_environment_are_given_per_environment():
    document = example()
    differing = {name for name in FIELDS if getattr(DEFAULTS["dev"], name) != getattr(DEFAULTS["prod"], name)}
    assert set(document["dev"]) == differing


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_loading_the_example_gives_exactly_the_defaults(environment):
    """The file goes through the same loader as a user's --settings file (TOML, coercion, validation): every
    value in it is the environment's default, and it is a valid settings file."""
    loaded, default = load_settings(environment, settings_file=EXAMPLE), load_settings(environment)
    different = {name: (getattr(loaded, name), getattr(default, name)) for name in FIELDS
                 if getattr(loaded, name) != getattr(default, name)}
    assert not different, f"{EXAMPLE.name} (value, default) where they differ in {environment}: {different}"


def test_one_line_each_saying_what_the_setting_does():
    keys: list[str] = []
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        if table := TABLE_LINE.match(line):
            if table["table"] not in ENVIRONMENTS:  # [tags]: a setting, so it says what it does too
                assert table["meaning"], line
                keys.append(table["table"])
            continue
        setting = SETTING_LINE.match(line)
        assert setting, f"not `key = value  # meaning`: {line!r}"
        keys.append(setting["key"])
    per_environment = set(example()["dev"])
    # Each setting has one line, except those given per environment: one in [dev] and one in [prod].
    assert sorted(keys) == sorted([*FIELDS, *per_environment])
