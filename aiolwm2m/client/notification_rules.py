"""When an observed path is due for a notification: pmin, pmax, gt, lt, st, epmin, epmax.

Pure functions of the effective attributes, the times and the values, so the rules are
tested without any I/O:

* pmax: a notification is due once pmax seconds passed since the last one, changed or not
  (pmax is ignored when it is not greater than pmin);
* a change is notified no earlier than pmin seconds after the last notification;
* gt / lt: a change is notified when the value crossed the threshold since the last
  notified value (either direction); st: when it moved by at least st; with none of the
  three set every change is notified;
* epmin / epmax bound how often the value is evaluated: a change is not evaluated before
  epmin seconds since the last evaluation, and the value is re-evaluated at least every
  epmax seconds even when nothing reported a change (values computed on read).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiolwm2m.lwm2m.attributes import NotificationAttributes


def effective_pmax(attrs: NotificationAttributes) -> int | None:
    pmin = attrs.pmin or 0
    pmax = attrs.pmax
    if pmax is None or pmax <= 0 or pmax <= pmin:
        return None
    return pmax


def has_value_conditions(attrs: NotificationAttributes) -> bool:
    return attrs.gt is not None or attrs.lt is not None or attrs.st is not None


def value_condition_met(attrs: NotificationAttributes, previous: float | None,
                        current: float | None) -> bool:
    """Whether moving from ``previous`` (last notified) to ``current`` is worth a
    notification under gt / lt / st (True when they are not set or not applicable)."""
    if not has_value_conditions(attrs) or current is None or previous is None:
        return True
    if attrs.gt is not None and (previous > attrs.gt) != (current > attrs.gt):
        return True
    if attrs.lt is not None and (previous < attrs.lt) != (current < attrs.lt):
        return True
    return attrs.st is not None and abs(current - previous) >= attrs.st


@dataclass(frozen=True, slots=True)
class PathTiming:
    """The outcome for one observed path at ``now``."""

    due: bool
    #: The change (if any) still waits (for pmin or epmin): keep it pending.
    keep_change: bool
    #: True when the value was evaluated now (the change passed pmin/epmin).
    evaluated: bool
    #: When to look again (None: only a change can make this path due).
    wake_at: float | None


def path_timing(attrs: NotificationAttributes, now: float, last_notify: float,
                last_eval: float, changed: bool, previous: float | None,
                current: float | None) -> PathTiming:
    pmin = float(attrs.pmin or 0)
    pmax = effective_pmax(attrs)
    epmin = float(attrs.epmin or 0)
    epmax = attrs.epmax if attrs.epmax and attrs.epmax > 0 else None
    wakes: list[float] = []
    if pmax is not None:
        if now - last_notify >= pmax:
            return PathTiming(True, False, True, None)
        wakes.append(last_notify + pmax)
    sampled = False
    if epmax is not None:
        if now - last_eval >= epmax:
            sampled = not changed
        else:
            wakes.append(last_eval + epmax)
    if not changed and not sampled:
        return PathTiming(False, False, False, min(wakes) if wakes else None)
    hold = max(last_notify + pmin, last_eval + epmin if epmin else now)
    if now < hold:
        wakes.append(hold)
        return PathTiming(False, changed, False, min(wakes))
    if sampled:
        # Nobody reported a change: only a value that moved counts.
        due = current is not None and current != previous and value_condition_met(
            attrs, previous, current)
        if epmax is not None:
            wakes.append(now + epmax)
    else:
        due = value_condition_met(attrs, previous, current)
    return PathTiming(due, False, True, min(wakes) if wakes else None)
