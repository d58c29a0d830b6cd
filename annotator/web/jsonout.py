"""What the API writes: JSON, always. Python's json writes ``NaN`` and ``Infinity`` (not JSON:
a client's parser refuses the whole answer) for a float that is not finite; here such a value
is written as ``null``, the JSON for "no number", and logged, since it means a rule computed
nothing where it should have said so itself."""

from __future__ import annotations

import math

from flask.json.provider import DefaultJSONProvider


def finite(value):
    """``value`` with every float that is not finite replaced by None, at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


class FiniteJSON(DefaultJSONProvider):
    def dumps(self, obj, **kwargs):
        kwargs.setdefault("allow_nan", False)
        try:
            return super().dumps(obj, **kwargs)
        except ValueError as e:  # "Out of range float values are not JSON compliant"
            if "JSON compliant" not in str(e):
                raise
            from flask import current_app, has_app_context

            if has_app_context():
                current_app.logger.warning("an answer held a number that is not finite; "
                                           "written as null")
            return super().dumps(finite(obj), **kwargs)
