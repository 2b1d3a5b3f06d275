"""lstmlib._checks: the shared input checks, and check_fields, which applies a
table of (field name, check) pairs to a configuration."""
import math
from dataclasses import dataclass, fields
from typing import Optional

import pytest

from lstmlib._checks import (check_bool, check_fields, check_finite_real,
                             check_int, check_non_negative_int,
                             check_one_of, check_positive_int,
                             check_positive_real, one_of, optional)
from lstmlib.experiments.language_model import LMConfig


@dataclass
class Settings:
    """A configuration as the library writes them: fields, then the table."""

    steps: int = 10                   # number of updates
    rate: float = 0.5                 # step size, > 0
    kind: str = "sgd"                 # "sgd" or "adam"
    patience: Optional[int] = None    # None: never stop early

    CHECKS = (("steps", check_positive_int),
              ("rate", check_positive_real),
              ("kind", one_of("sgd", "adam")),
              ("patience", optional(check_positive_int)))

    def __post_init__(self):
        check_fields("Settings", self, self.CHECKS)


def test_check_fields_accepts_good_values_and_keeps_them():
    settings = Settings(steps=3, rate=2, kind="adam", patience=4)
    assert (settings.steps, settings.rate, settings.kind,
            settings.patience) == (3, 2, "adam", 4)
    assert type(settings.rate) is int       # checks do not convert fields
    assert Settings().patience is None


@pytest.mark.parametrize("kwargs, error, message", [
    ({"steps": 0}, ValueError,
     "Settings: expected steps to be a positive int, got 0"),
    ({"rate": -1.0}, ValueError, "Settings: expected rate > 0, got -1.0"),
    ({"rate": "fast"}, TypeError,
     "Settings: expected rate to be a real number, got str"),
    ({"kind": "rmsprop"}, ValueError,
     "Settings: expected kind to be 'sgd' or 'adam', got 'rmsprop'"),
    ({"patience": 0}, ValueError,
     "Settings: expected patience to be a positive int or None, got 0"),
])
def test_check_fields_names_owner_field_expectation_and_value(
        kwargs, error, message):
    with pytest.raises(error) as raised:
        Settings(**kwargs)
    assert str(raised.value) == message


def test_check_fields_stops_at_the_first_failure_in_table_order():
    with pytest.raises(ValueError, match="steps"):
        Settings(steps=0, kind="rmsprop")


def test_check_fields_refuses_a_table_naming_a_missing_field():
    with pytest.raises(AttributeError, match="speed"):
        check_fields("Settings", Settings(),
                     (("speed", check_positive_int),))


@pytest.mark.parametrize("check, good, bad, error", [
    (check_positive_int, [1, 7], [0, -1, True, 1.0, "1"], ValueError),
    (check_non_negative_int, [0, 3], [-1, True, 0.0], ValueError),
    (check_int, [-5, 0, 2], [True, 1.5, "1", None], TypeError),
    (check_bool, [True, False], [0, 1, None, "yes"], TypeError),
    (check_positive_real, [1e-9, 2, 3.5], [0, -0.5, math.inf, math.nan],
     ValueError),
    (check_positive_real, [], [True, "1", None], TypeError),
    (check_finite_real, [-1, 0.0, 2.5], [math.inf, math.nan], ValueError),
])
def test_each_check(check, good, bad, error):
    for value in good:
        check("owner", "x", value)
    for value in bad:
        with pytest.raises(error, match=r"^owner: expected x"):
            check("owner", "x", value)


def test_real_checks_return_a_float():
    assert check_positive_real("owner", "x", 2) == 2.0
    assert type(check_positive_real("owner", "x", 2)) is float


def test_check_one_of_lists_the_choices():
    check_one_of("owner", "kind", "b", ("a", "b", "c"))
    with pytest.raises(ValueError) as raised:
        check_one_of("owner", "kind", "d", ("a", "b", "c"))
    assert str(raised.value) == \
        "owner: expected kind to be 'a', 'b' or 'c', got 'd'"
    with pytest.raises(ValueError, match="expected kind to be 'a', got 'd'"):
        check_one_of("owner", "kind", "d", ("a",))


def test_optional_passes_none_and_keeps_the_error_type():
    check = optional(check_positive_real)
    assert check("owner", "x", None) is None
    assert check("owner", "x", 3) == 3.0
    with pytest.raises(TypeError) as raised:
        check("owner", "x", "3")
    assert str(raised.value) == \
        "owner: expected x to be a real number or None, got str"


def test_lm_config_checks_every_field_once():
    names = [name for name, _ in LMConfig.CHECKS]
    assert sorted(names) == sorted(f.name for f in fields(LMConfig))
    assert len(set(names)) == len(names)
