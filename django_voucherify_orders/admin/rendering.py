"""Small HTML pieces shared by the admin pages: JSON blocks, state badges, attempt tables."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.template.defaultfilters import truncatechars
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from ..models import SyncAttempt, SyncState

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

# Inline styles, so a badge looks right on any page (the shop's own changelist too), and
# the admin's CSS variables, so it follows the light and dark themes.
_BADGE = (
    "display:inline-block;padding:1px 8px;border-radius:10px;font-size:0.6875rem;"
    "font-weight:600;white-space:nowrap;color:var(--body-fg);background:{}"
)
TONES = {
    "ok": "var(--message-success-bg, #dfd)",
    "bad": "var(--message-error-bg, #ffefef)",
    "wait": "var(--message-warning-bg, #ffc)",
    "quiet": "var(--darkened-bg, #f8f8f8)",
}
STATE_TONES: dict[str, str] = {
    SyncState.PENDING: "wait",
    SyncState.SYNCED: "ok",
    SyncState.FAILED: "bad",
    SyncState.SKIPPED: "quiet",
    SyncState.DELETED: "quiet",
}


def badge(text: Any, tone: str, title: str = "") -> SafeString:
    style = _BADGE.format(TONES.get(tone, TONES["quiet"]))
    return format_html(
        '<span class="vo-badge vo-{}" style="{}" title="{}">{}</span>', tone, style, title, text
    )


def pretty_json(value: Any) -> SafeString:
    if value is None or value == {}:
        return format_html('<span class="vo-quiet">{}</span>', _("(none)"))
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return format_html('<pre class="vo-json">{}</pre>', text)


def state_badge(state: str | None, title: str = "") -> SafeString:
    if not state:
        return badge(_("not tracked"), "quiet", title)
    label: StrOrPromise
    try:
        label = SyncState(state).label
    except ValueError:
        label = state
    return badge(label, STATE_TONES.get(state, "quiet"), title)


def when(value: Any) -> str:
    if value is None:
        return "—"
    return date_format(timezone.localtime(value), "DATETIME_FORMAT")


def attempts_table(attempts: Iterable[SyncAttempt], *, bodies: bool = True) -> SafeString:
    rows = list(attempts)
    if not rows:
        return format_html('<span class="vo-quiet">{}</span>', _("No HTTP attempt recorded."))
    head = [_("Started"), _("Call"), _("Status"), _("Duration"), _("Request id"), _("Error")]
    if bodies:
        head.append(_("Response (truncated)"))

    def cells(attempt: SyncAttempt) -> SafeString:
        ok = attempt.status_code is not None and attempt.status_code < 400
        status = badge(attempt.status_code or _("no answer"), "ok" if ok else "bad")
        parts = [
            format_html("<td>{}</td>", when(attempt.started_at)),
            format_html("<td><code>{} {}</code></td>", attempt.method, attempt.path),
            format_html("<td>{}</td>", status),
            format_html("<td>{} ms</td>", attempt.duration_ms),
            format_html("<td><code>{}</code></td>", attempt.request_id or "—"),
            format_html("<td>{}</td>", truncatechars(attempt.error, 200) or "—"),
        ]
        if bodies:
            body = (
                format_html(
                    '<details><summary>{}</summary><pre class="vo-json">{}</pre></details>',
                    truncatechars(attempt.response_body, 60),
                    attempt.response_body,
                )
                if attempt.response_body
                else "—"
            )
            parts.append(format_html("<td>{}</td>", body))
        return SafeString("".join(parts))

    header = format_html_join("", '<th scope="col">{}</th>', ((h,) for h in head))
    body = format_html_join("", "<tr>{}</tr>", ((cells(a),) for a in rows))
    return format_html(
        '<table class="vo-table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', header, body
    )
