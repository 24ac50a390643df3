"""Cron expressions: validation at declaration and the tick arithmetic the scheduler uses.

croniter (and the dateutil it loads) is imported on first use: an app without schedules, and
every worker process of one, starts without it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from offload._errors import ConfigurationError


def validate_cron(expression: str) -> str:
    """Return a valid expression or raise naming the problem and showing a correct one."""
    from croniter import croniter

    if not isinstance(expression, str) or not croniter.is_valid(expression):
        raise ConfigurationError(
            f"invalid cron expression {expression!r}; use five fields "
            "'minute hour day month weekday' such as '*/5 * * * *', or six with seconds last"
        )
    return expression


def previous_tick(expression: str, now: float) -> float:
    """The latest tick at or before `now` (UTC epoch seconds)."""
    from croniter import croniter

    start = datetime.fromtimestamp(now + 0.001, UTC)
    return float(croniter(expression, start).get_prev(float))


def next_tick(expression: str, now: float) -> float:
    """The first tick strictly after `now` (UTC epoch seconds)."""
    from croniter import croniter

    return float(croniter(expression, datetime.fromtimestamp(now, UTC)).get_next(float))
