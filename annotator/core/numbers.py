"""Every number that arrives: path ids, query values and JSON whole numbers (issue 22).

One rule, here: a whole number is written in ASCII digits only (``str.isdigit`` and the
regex ``\\d`` also take '²', '①' and the Arabic-Indic '١', which ``int`` then refuses or
reads as another spelling of 1), and it lies inside what the column it meets can hold.

- ``ID_MAX``: the largest id a path may name on each database (SQLite's INTEGER holds 2^63-1,
  PostgreSQL's ``integer`` 2^31-1); past it no row can exist, so the answer is 404.
- ``INT_MIN``..``INT_MAX``: the range of every whole number a query value or a JSON field
  takes (PostgreSQL's ``integer``: what every integer column of ours is there). The same on
  SQLite, so that a body one database accepts the other does too. Past it: 422.

Pure: the web layer turns ``None`` into its 404 or 422.
"""

from __future__ import annotations

import re

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
ID_MAX = {"sqlite": 2**63 - 1, "postgresql": 2**31 - 1}
_DIGITS = re.compile(r"[0-9]{1,19}")  # 19 digits hold 2^63 - 1; more cannot be in range
DIGITS_REGEX = "[0-9]+"  # the URL converter's (werkzeug's default, \d+, takes any digit)


def id_max(dialect: str) -> int:
    """The largest id a path may name, for a SQLAlchemy dialect name."""
    return ID_MAX["sqlite" if dialect == "sqlite" else "postgresql"]


def whole(text: str | None, lo: int = 0, hi: int = INT_MAX) -> int | None:
    """``text`` as a whole number from ``lo`` to ``hi`` when it is ASCII digits only (no
    sign, no space, no underscore), else None."""
    if text is None or not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if lo <= value <= hi else None


_DECIMAL = re.compile(r"[0-9]{1,19}(\.[0-9]{1,19})?")


def decimal(text: str | None, lo: float, hi: float) -> float | None:
    """``text`` as a number from ``lo`` to ``hi`` when it is ASCII digits with at most one
    '.' (``float`` also reads 'nan', 'inf', '1e9', '٠.٥' and ' 0.5 '), else None."""
    if text is None or not _DECIMAL.fullmatch(text):
        return None
    value = float(text)
    return value if lo <= value <= hi else None


def in_range(value: int, lo: int = INT_MIN, hi: int = INT_MAX) -> bool:
    return lo <= value <= hi
