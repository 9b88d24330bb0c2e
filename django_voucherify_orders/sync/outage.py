"""Riding out an outage: how long a transient failure is retried, and the pause of every
push while Voucherify refuses the credentials.

- Transient failures (timeouts, connection errors, 5xx, 429, a garbled 2xx) keep the
  order pending. It is retried with capped, fully jittered backoff until ``RETRY_FOR``
  seconds after the first failure of the current run (and, when ``MAX_ATTEMPTS`` is set,
  for at most that many tries); only then is it failed.
- A 401/403 is nobody's order's fault. One switch in Django's cache, shared by every
  worker, pauses all pushes: while it is on, pushes lease nothing. Every
  ``AUTH_PROBE_EVERY`` seconds one push (the first worker to claim the probe slot) is let
  through; another refusal extends the pause, a success switches it off. The switch
  belongs to the credentials that were refused: configure other ones and pushes go at
  once. A cache outage never fails a push; it only loses the switch.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TypeGuard

from django.core.cache import cache
from django.utils import timezone
from django.utils.crypto import salted_hmac

from ..client import VoucherifyAPIError
from ..client.retry import full_jitter_backoff
from ..conf import VoucherifyOrdersSettings, get_settings
from ..models import OrderSync, SyncState

__all__ = [
    "PAUSE_KEY",
    "AuthPause",
    "current_pause",
    "pause_pushes",
    "refused_credentials",
    "resume_pushes",
    "retry_delay",
    "wait_for_credentials",
]

logger = logging.getLogger("django_voucherify_orders.sync")

PAUSE_KEY = "voucherify_orders:auth_pause"
PROBE_KEY = "voucherify_orders:auth_probe:{}"
# A switch nobody probes any more (every worker stopped) does not outlive a week.
PAUSE_TIMEOUT = 7 * 86400
# While a probe is in flight, the other pushes look again this soon (it takes at most
# CONNECT_TIMEOUT + READ_TIMEOUT).
PROBE_BUSY_WAIT = 5.0
MAX_MESSAGE_CHARS = 500


# --- transient failures ---------------------------------------------------------------------


def retry_delay(
    config: VoucherifyOrdersSettings,
    tries: int,
    first_failed_at: datetime,
    now: datetime,
    server_wait: float | None = None,
) -> float | None:
    """Seconds until the next try after ``tries`` failed ones of a run that began at
    ``first_failed_at``; None when the run is over and the order is to be failed."""
    if config.max_attempts is not None and tries >= config.max_attempts:
        return None
    left = config.retry_for - (now - first_failed_at).total_seconds()
    if left <= 0:
        return None
    delay = full_jitter_backoff(
        tries, config.retry_backoff_base, config.retry_backoff_max, server_wait=server_wait
    )
    # The last try is at the end of RETRY_FOR, not up to a backoff after it.
    return min(delay, left)


# --- refused credentials --------------------------------------------------------------------


@dataclass(frozen=True)
class AuthPause:
    """The shared switch: on since ``since``, for the credentials ``credentials`` names."""

    since: datetime
    status: int
    message: str  # the error as str(error) shows it: never the secret key
    probe_at: datetime
    credentials: str


def refused_credentials(exc: BaseException) -> TypeGuard[VoucherifyAPIError]:
    return isinstance(exc, VoucherifyAPIError) and exc.status_code in (401, 403)


def _fingerprint(config: VoucherifyOrdersSettings) -> str:
    """Names the credentials without revealing them (an HMAC keyed by Django's SECRET_KEY)."""
    value = f"{config.api_url}\n{config.app_id}\n{config.secret_key.get_secret_value()}"
    return salted_hmac("django_voucherify_orders.outage", value).hexdigest()[:16]


def _read() -> AuthPause | None:
    try:
        value = cache.get(PAUSE_KEY)
    except Exception:  # a cache outage must not fail a push
        logger.debug("could not read the credentials pause from the cache", exc_info=True)
        return None
    if not isinstance(value, dict):
        return None
    try:
        return AuthPause(**value)
    except TypeError:  # written by another version of the app
        return None


def current_pause(config: VoucherifyOrdersSettings | None = None) -> AuthPause | None:
    """The pause of the configured credentials, if pushes are paused; never raises."""
    pause = _read()
    if pause is None:
        return None
    try:
        config = config or get_settings()
    except Exception:  # not configured: nothing to pause
        return None
    return pause if pause.credentials == _fingerprint(config) else None


# Whether this thread's last check found a switch on and let its push through (as the
# probe, or with other credentials): its next successful push switches it off.
_seen = threading.local()


def wait_for_credentials(
    config: VoucherifyOrdersSettings, now: datetime | None = None
) -> float | None:
    """Before a push: None when it may go, else the seconds to wait for the next probe."""
    now = now or timezone.now()
    pause = _read()
    _seen.pause = pause is not None
    if pause is None or pause.credentials != _fingerprint(config):
        return None
    if now < pause.probe_at:
        return max((pause.probe_at - now).total_seconds(), 0.001)
    # One probe per AUTH_PROBE_EVERY from probe_at on: a probe that settles nothing (a
    # 503, a worker killed mid-push) is followed by another in the next window.
    every = config.auth_probe_every
    elapsed = (now - pause.probe_at).total_seconds()
    window = int(elapsed // every)
    try:
        slot = PROBE_KEY.format(f"{pause.probe_at.timestamp():.0f}:{window}")
        claimed = cache.add(slot, 1, timeout=int(every) + 1)
    except Exception:  # a cache outage must not fail a push: let it go
        return None
    if claimed:
        logger.info("trying Voucherify's credentials again (pushes paused since %s)", pause.since)
        return None
    return max(min(PROBE_BUSY_WAIT, (window + 1) * every - elapsed), 0.001)


def hold_paused(keys: list[str], wait: float, config: VoucherifyOrdersSettings) -> None:
    """Pushes held by the pause come back by themselves at the probe (their task is
    queued again): keep the sweep from queueing more copies of them meanwhile."""
    later = timezone.now() + timedelta(seconds=wait + config.sweep_after)
    OrderSync.objects.filter(pk__in=keys, state=SyncState.PENDING).update(next_attempt_at=later)


def pause_pushes(
    exc: VoucherifyAPIError, config: VoucherifyOrdersSettings, now: datetime | None = None
) -> float:
    """Voucherify refused the credentials: pause every push (or extend the pause) until
    the next probe; the seconds until then."""
    now = now or timezone.now()
    wait = config.auth_probe_every
    credentials = _fingerprint(config)
    previous = _read()
    same = previous is not None and previous.credentials == credentials
    pause = AuthPause(
        since=previous.since if same and previous else now,
        status=exc.status_code,
        message=str(exc)[:MAX_MESSAGE_CHARS],
        probe_at=now + timedelta(seconds=wait),
        credentials=credentials,
    )
    try:
        first = cache.add(PAUSE_KEY, asdict(pause), timeout=PAUSE_TIMEOUT)
        if not first:
            cache.set(PAUSE_KEY, asdict(pause), timeout=PAUSE_TIMEOUT)
    except Exception:  # no switch without a cache: this order still waits, unfailed
        logger.warning("could not record the credentials pause in the cache", exc_info=True)
        first = not same
    if first or not same:  # once per pause, not once per order
        logger.error(
            "Voucherify refused the credentials (%s): every push is paused, and tried again "
            "every %ds until they work. Fix APP_ID / SECRET_KEY (or the key's permissions).",
            pause.message, wait,
        )  # fmt: skip
    return wait


def resume_pushes() -> bool:
    """Switch the pause off (a push went through); True when this call did it."""
    _seen.pause = False
    try:
        resumed = bool(cache.delete(PAUSE_KEY))
    except Exception:
        logger.warning("could not clear the credentials pause in the cache", exc_info=True)
        return False
    if resumed:
        logger.warning("Voucherify accepts the credentials again: pushes resume")
    return resumed


def write_landed() -> None:
    """The engine's word that Voucherify took a write: if this thread's last check found
    the switch on (it was the probe, or had other credentials), switch it off. Called
    directly, not from ``after_push``: a project's receiver that raises must not keep
    every push paused."""
    if getattr(_seen, "pause", False):
        resume_pushes()
