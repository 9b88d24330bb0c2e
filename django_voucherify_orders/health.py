"""How the sync is doing, from the database and the cache only (never from Voucherify).

The admin's health page shows :func:`sync_health`; :func:`hourly_chart_svg` draws its
pushes-per-hour chart as inline SVG on the server, so the page needs no JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .models import OrderSync, SyncAttempt, SyncState
from .sync import LAST_RATE_LIMIT_KEY
from .sync.outage import AuthPause, current_pause

__all__ = ["HourBucket", "SyncHealth", "hourly_chart_svg", "last_rate_limit", "sync_health"]

HOURS = 24


@dataclass(frozen=True)
class HourBucket:
    start: datetime
    total: int = 0
    failed: int = 0

    @property
    def ok(self) -> int:
        return self.total - self.failed


@dataclass
class SyncHealth:
    counts: list[tuple[str, str, int]]  # (state, label, count) for every state
    total: int
    oldest_pending: OrderSync | None
    oldest_pending_age: timedelta | None
    failures_by_key: list[tuple[str, int]]
    hours: list[HourBucket]
    rate_limit: dict[str, Any] | None
    #: on while Voucherify refuses the credentials: every push waits for it
    auth_pause: AuthPause | None = None
    generated_at: datetime = field(default_factory=timezone.now)

    @property
    def calls_last_day(self) -> int:
        return sum(bucket.total for bucket in self.hours)

    @property
    def failed_calls_last_day(self) -> int:
        return sum(bucket.failed for bucket in self.hours)


def sync_health(now: datetime | None = None) -> SyncHealth:
    """Four queries whatever the number of orders and attempts."""
    now = now or timezone.now()
    by_state = dict(
        OrderSync.objects.order_by()
        .values("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    counts = [(state.value, str(state.label), by_state.get(state.value, 0)) for state in SyncState]
    # The row's last change (or retry) time: when it was last made pending or rescheduled.
    oldest = (
        OrderSync.objects.filter(state=SyncState.PENDING)
        .order_by("updated_at")
        .only("order_pk", "source_id", "state", "updated_at")
        .first()
    )
    failures = list(
        OrderSync.objects.filter(state=SyncState.FAILED)
        .order_by()
        .values("last_error_key")
        .annotate(n=Count("pk"))
        .order_by("-n", "last_error_key")
        .values_list("last_error_key", "n")
    )
    return SyncHealth(
        counts=counts,
        total=sum(count for _, _, count in counts),
        oldest_pending=oldest,
        oldest_pending_age=(now - oldest.updated_at) if oldest else None,
        failures_by_key=failures,
        hours=hourly_attempts(now),
        rate_limit=last_rate_limit(),
        auth_pause=current_pause(),
        generated_at=now,
    )


def hourly_attempts(now: datetime, hours: int = HOURS) -> list[HourBucket]:
    """HTTP attempts of pushes per hour over the last ``hours`` (oldest first, the current
    hour last); an attempt failed when it got no answer or a 4xx/5xx one."""
    current = now.replace(minute=0, second=0, microsecond=0)
    first = current - timedelta(hours=hours - 1)
    rows = (
        SyncAttempt.objects.filter(started_at__gte=first)
        .annotate(hour=TruncHour("started_at"))
        .order_by()
        .values("hour")
        .annotate(
            total=Count("pk"),
            failed=Count("pk", filter=Q(status_code__isnull=True) | Q(status_code__gte=400)),
        )
    )
    found = {row["hour"]: row for row in rows}
    buckets = []
    for index in range(hours):
        start = first + timedelta(hours=index)
        row = found.get(start)
        buckets.append(HourBucket(start, row["total"], row["failed"]) if row else HourBucket(start))
    return buckets


def last_rate_limit() -> dict[str, Any] | None:
    """The rate-limit headers of the last answer a push (or the admin) saw, if known."""
    try:
        info = cache.get(LAST_RATE_LIMIT_KEY)
    except Exception:  # a cache outage must not break the page
        return None
    if not isinstance(info, dict):
        return None
    limit, remaining = info.get("limit"), info.get("remaining")
    seen_at = info.get("seen_at")
    result = dict(info)
    result["percent"] = (
        round(100 * remaining / limit) if limit and remaining is not None else None
    )  # fmt: skip
    result["seen"] = (
        datetime.fromtimestamp(seen_at, tz=timezone.get_current_timezone()) if seen_at else None
    )
    retry_at = info.get("retry_at")
    result["retry"] = (
        datetime.fromtimestamp(retry_at, tz=timezone.get_current_timezone()) if retry_at else None
    )
    return result


# --- the chart ----------------------------------------------------------------------------

_BAR = 22
_GAP = 4
_HEIGHT = 140
_LEFT = 36
_TOP = 12
_BOTTOM = 22


def _nice_ceiling(value: int) -> int:
    """The axis maximum: 1, 2, 5, 10, 20, 25, 50, 100, 200, 250 ... at or above ``value``."""
    step = 1
    while True:
        for factor in (1, 2, 2.5, 5):
            top = step * factor
            if top == int(top) and top >= value:
                return int(top)
        step *= 10


def hourly_chart_svg(hours: list[HourBucket]) -> SafeString:
    """A stacked bar chart (successful and failed attempts per hour) as inline SVG.

    Colours come from the admin's CSS variables, so it follows the light and dark themes;
    each bar has a ``<title>`` (a native tooltip) with its numbers.
    """
    peak = _nice_ceiling(max((bucket.total for bucket in hours), default=0) or 1)
    width = _LEFT + len(hours) * (_BAR + _GAP) + _GAP
    height = _TOP + _HEIGHT + _BOTTOM
    base = _TOP + _HEIGHT

    def y(value: int) -> float:
        return base - _HEIGHT * value / peak

    grid = format_html_join(
        "",
        '<line x1="{}" x2="{}" y1="{}" y2="{}" class="vo-grid"/>'
        '<text x="{}" y="{}" class="vo-axis" text-anchor="end">{}</text>',
        (
            (_LEFT, width, round(y(v), 1), round(y(v), 1), _LEFT - 6, round(y(v), 1) + 4, v)
            for v in sorted({0, peak // 2, peak})
        ),
    )
    bars = []
    for index, bucket in enumerate(hours):
        x = _LEFT + _GAP + index * (_BAR + _GAP)
        local_start = timezone.localtime(bucket.start)
        label = local_start.strftime("%H:%M")
        tip = _("%(hour)s: %(calls)s, %(failed)s failed") % {
            "hour": label,
            "calls": ngettext("%(n)d call", "%(n)d calls", bucket.total) % {"n": bucket.total},
            "failed": bucket.failed,
        }
        ok_top = y(bucket.ok)
        bars.append(
            format_html(
                '<g class="vo-bar"><title>{}</title>'
                '<rect x="{}" y="{}" width="{}" height="{}" class="vo-ok"/>'
                '<rect x="{}" y="{}" width="{}" height="{}" class="vo-failed"/>'
                '<rect x="{}" y="{}" width="{}" height="{}" class="vo-hit"/></g>',
                tip,
                x,
                round(ok_top, 1),
                _BAR,
                round(base - ok_top, 1),
                x,
                round(y(bucket.total), 1),
                _BAR,
                round(ok_top - y(bucket.total), 1),
                x,
                _TOP,
                _BAR,
                _HEIGHT,
            )
        )
        if index % 3 == 0 or index == len(hours) - 1:
            bars.append(
                format_html(
                    '<text x="{}" y="{}" class="vo-axis" text-anchor="middle">{}</text>',
                    x + _BAR / 2,
                    base + 15,
                    label,
                )
            )
    summary = _("Push attempts per hour over the last %(hours)d hours") % {"hours": len(hours)}
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="vo-chart" role="img" '
        'viewBox="0 0 {} {}" width="{}" height="{}" aria-label="{}">{}{}</svg>',
        width,
        height,
        width,
        height,
        summary,
        grid,
        SafeString("".join(bars)),
    )
