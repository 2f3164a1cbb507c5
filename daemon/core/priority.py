"""Priority from impact x urgency (ITIL): a small pure table, overridable by the operator.

Agents set impact and urgency with `#impact` / `#urgency`; rules may set them too. The
priority follows the matrix unless someone set it by hand (`priority_locked`).
"""

from __future__ import annotations

from daemon.core.values import Level, Priority, Setup

H, M, L = Level.HIGH, Level.MEDIUM, Level.LOW

DEFAULT_MATRIX: dict[tuple[Level, Level], Priority] = {
    (H, H): Priority.URGENT,
    (H, M): Priority.HIGH,
    (M, H): Priority.HIGH,
    (H, L): Priority.MEDIUM,
    (L, H): Priority.MEDIUM,
    (M, M): Priority.MEDIUM,
    (M, L): Priority.LOW,
    (L, M): Priority.LOW,
    (L, L): Priority.LOW,
}


def priority_for(impact: Level, urgency: Level, setup: Setup) -> Priority:
    """The priority of this impact and urgency: the operator's row if there is one, else the default."""
    return matrix(setup).get((impact, urgency), Priority.MEDIUM)


def matrix(setup: Setup) -> dict[tuple[Level, Level], Priority]:
    """The default matrix with `setup.priority_matrix` rows (impact, urgency, priority) laid over it;
    rows with unknown words are skipped (the config loader reports them)."""
    table = dict(DEFAULT_MATRIX)
    for impact, urgency, priority in setup.priority_matrix:
        try:
            table[(Level(impact.lower()), Level(urgency.lower()))] = Priority(priority.lower())
        except ValueError:
            continue
    return table
