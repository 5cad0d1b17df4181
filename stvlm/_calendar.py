"""What a window's calendar may tell ST-VLM, and the checks that the windows carry it.

Kept free of torch, so that the estimator validates its parameters without importing it.
"""

from __future__ import annotations

__all__ = ["CALENDARS", "CALENDAR_FORMS", "calendar_tensors", "check_calendar", "resolve_calendar"]

#: What a window's calendar may tell the network (an extension beyond the paper).
CALENDARS = (None, "time-of-day", "time-of-day+day-of-week")
#: How it enters: added to every sensor token, or as tokens of its own in the text stream.
CALENDAR_FORMS = ("embedding", "tokens")

#: What ``calendar="auto"`` takes from windows that carry their time of day (chosen on
#: validation data: docs/results.md, "Calendar").
AUTO_CALENDAR = "time-of-day"


def resolve_calendar(calendar, windows):
    """The calendar a fit uses: ``"auto"`` becomes what the training windows carry.

    ``"auto"`` gives :data:`AUTO_CALENDAR` when the windows carry their time of day
    (a DataFrame's DatetimeIndex, ``steps_per_day`` and ``start``, or
    :class:`stvlm.Windows` with ``time_of_day``), and ``None`` otherwise; an explicit
    calendar the windows cannot give is an error.
    """
    if calendar == "auto":
        if windows.time_of_day is None:
            return None
        if AUTO_CALENDAR.endswith("day-of-week") and windows.day_of_week is None:
            return "time-of-day"
        return AUTO_CALENDAR
    check_calendar(windows, calendar, windows.steps_per_day, fitting=True)
    return calendar


def check_calendar(windows, calendar, steps_per_day, fitting=False):
    """Refuse windows that lack the calendar a model reads, or count it in other slots."""
    if not calendar:
        return
    where = (
        "fit a DataFrame with a DatetimeIndex, give steps_per_day and start for a bare series, or pass "
        "stvlm.Windows(X, y, time_of_day=..., day_of_week=..., steps_per_day=...)"
        if fitting
        else "pass stvlm.Windows(X, time_of_day=..., day_of_week=..., steps_per_day=...) (the time of each "
        "window's last history step), stvlm.last_window(series, history, ...), or Protocol.test_data()"
    )
    if windows.time_of_day is None:
        raise ValueError(f"calendar={calendar!r} reads each window's time of day, and these windows carry none: {where}.")
    if calendar.endswith("day-of-week") and windows.day_of_week is None:
        raise ValueError(
            f"calendar={calendar!r} reads each window's day of week, and these windows carry none "
            f"(a series dated by a slot number has no weekday): {where}."
        )
    if windows.steps_per_day != steps_per_day:
        raise ValueError(
            f"the windows carry the time of day in {windows.steps_per_day} slots per day, but the model "
            f"was fitted with {steps_per_day}."
        )


def calendar_tensors(windows, idx, calendar, device):
    """The calendar inputs of windows ``idx``: ``()``, ``(time_of_day,)`` or
    ``(time_of_day, day_of_week)`` as long tensors on ``device``."""
    if not calendar:
        return ()
    import torch

    fields = [windows.time_of_day]
    if calendar.endswith("day-of-week"):
        fields.append(windows.day_of_week)
    return tuple(torch.as_tensor(f[idx], dtype=torch.long, device=device) for f in fields)
