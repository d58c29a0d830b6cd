"""Whether a model label suggests: by what annotators did with its suggestions (issue 23).

Pure. A version's held-out precision is measured on examples cut from the articles it learned
from; on new articles it was right on fewer than half of its suggestions. So a label of a
model version suggests while its **live precision** — accepted as they were, over its last
``WINDOW`` reviewed suggestions (accepted, accepted then edited, or rejected) on documents it
never learned from — is at least ``BAR``. Until ``WINDOW`` have been reviewed the held-out
figure decides, as before. A label that falls below stops suggesting; the next version starts
again with its own count.
"""

from __future__ import annotations

WINDOW = 20
BAR = 0.8
ACCEPTED, EDITED, REJECTED = "accepted", "edited", "rejected"


def live_labels(events: list[tuple], held_out: set[str], labels: set[str]) -> dict[str, dict]:
    """``{label: {"reviewed", "accepted", "precision", "active", "why"}}`` for every label of
    ``labels`` (a version's), from ``events`` (when, label, outcome) in any order; ``held_out``:
    the labels the held-out scores let suggest."""
    by_label: dict[str, list] = {}
    for _when, label, outcome in sorted(events, key=lambda e: (e[0], e[2])):
        by_label.setdefault(label, []).append(outcome)
    out = {}
    for label in sorted(labels | set(by_label)):
        last = by_label.get(label, [])[-WINDOW:]
        accepted = sum(1 for o in last if o == ACCEPTED)
        precision = round(accepted / len(last), 3) if last else None
        if len(last) < WINDOW:
            active = label in held_out
            why = f"{len(last)} of {WINDOW} reviewed: held-out precision {'≥' if active else '<'} {BAR}"
        else:
            active = precision >= BAR
            why = f"live precision {precision:.2f} over the last {WINDOW} reviewed ({'≥' if active else '<'} {BAR})"
        out[label] = {"reviewed": len(last), "accepted": accepted, "precision": precision,
                      "active": active, "why": why}
    return out
