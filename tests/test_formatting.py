"""The KPI cards' value and change texts."""

import doctest

import pytest

from views import formatting
from views.formatting import format_change, is_unchanged


def test_the_docstring_examples_hold():
    assert doctest.testmod(formatting).failed == 0


@pytest.mark.parametrize(
    ("change", "change_pct", "unit", "expected"),
    [
        (-0.004, -0.01, "percent", "0.0 pp"),  # a repeat rate 42.71% → 42.70%: not "-0.0 pp"
        (0.3, 1.0, "points", "0 points"),
        (-1.0, -0.04, "count", "0.0%"),
        (-0.001, None, "currency", "$0.00"),
        (-0.2, None, "currency", "-$0.20"),
        (-0.06, -0.2, "percent", "-0.1 pp"),
    ],
)
def test_a_change_too_small_to_show_has_no_sign(change, change_pct, unit, expected):
    delta = format_change(change, change_pct, unit)
    assert delta == expected
    assert is_unchanged(delta) == (expected[0] not in "+-")
