"""Numbers as people read them: every value carries its unit."""

from __future__ import annotations

import math

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def _compact(value: float, *, exact_below: float = 1e3) -> str:
    magnitude = abs(value)
    if magnitude < exact_below and magnitude >= 1e3:
        return f"{value:,.0f}"
    for threshold, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= threshold:
            return f"{value / threshold:,.1f}{suffix}" if magnitude < threshold * 100 else f"{value / threshold:,.0f}{suffix}"
    return f"{value:,.0f}" if magnitude >= 100 or value == int(value) else f"{value:,.2f}"


def format_value(value: float | None, unit: str, *, currency: str = "USD") -> str:
    """``1234567, "currency"`` → ``$1.2M``; ``41.2, "percent"`` → ``41.2%``; None → ``–``.

    >>> format_value(41.25, "percent"), format_value(12.0, "points"), format_value(1500, "count")
    ('41.2%', '+12', '1,500')
    >>> format_value(2_345_678, "count"), format_value(83_054.4, "currency")
    ('2.3M', '$83.1k')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if unit == "currency":
        symbol = CURRENCY_SYMBOLS.get(currency)
        return f"{'-' if value < 0 else ''}{symbol}{_compact(abs(value))}" if symbol else f"{_compact(value)} {currency}"
    if unit == "percent":
        return f"{value:.1f}%"
    if unit == "points":
        return f"{value:+.0f}"
    # Counts stay exact up to 100k: executives compare "1,194 orders", not "1.2k".
    return _compact(value, exact_below=1e5)


def format_change(change: float | None, change_pct: float | None, unit: str, *, currency: str = "USD") -> str | None:
    """The delta shown under a KPI: relative for amounts, percentage points for rates.

    A change that rounds to zero has no sign (not "-0.0 pp"): :func:`is_unchanged` tells it apart.

    >>> format_change(5.0, 12.5, "count"), format_change(-2.0, -4.0, "percent"), format_change(-0.01, -0.1, "percent")
    ('+12.5%', '-2.0 pp', '0.0 pp')
    """
    if change is None or (isinstance(change, float) and math.isnan(change)):
        return None
    if unit == "percent":
        text = f"{change:+.1f} pp"
    elif unit == "points":
        text = f"{change:+.0f} points"
    elif change_pct is None:
        text = f"{'+' if change >= 0 else ''}{format_value(change, unit, currency=currency)}"
    else:
        text = f"{change_pct:+.1f}%"
    return text[1:] if not any(digit in "123456789" for digit in text) else text


def is_unchanged(delta: str | None) -> bool:
    """Whether a :func:`format_change` text shows no change (it then has no sign)."""
    return delta is not None and not delta.startswith(("+", "-"))
