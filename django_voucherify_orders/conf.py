"""The ``VOUCHERIFY_ORDERS`` settings dict: read at call time, validated once, typed.

Reading at call time (not import time) keeps ``override_settings`` working in
tests. The validated object is cached until the dict is replaced or Django's
``setting_changed`` signal fires.
"""

from __future__ import annotations

import difflib
import ipaddress
import threading
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .client import DEFAULT_API_URL, RetryPolicy, VoucherifyClient, VoucherifyConfigurationError

__all__ = [
    "ConfigProblem",
    "VoucherifyOrdersSettings",
    "check_settings",
    "get_client",
    "get_settings",
]

SETTING = "VOUCHERIFY_ORDERS"
REGION_URLS = {
    "EU (default)": DEFAULT_API_URL,
    "US": "https://us1.api.voucherify.io",
    "Asia (Singapore)": "https://as1.api.voucherify.io",
}

# What a user should write for each key: the line shown in error messages and check hints.
EXAMPLE_LINES: dict[str, str] = {
    "APP_ID": '"APP_ID": os.environ["VOUCHERIFY_APP_ID"],',
    "SECRET_KEY": '"SECRET_KEY": os.environ["VOUCHERIFY_SECRET_KEY"],',
    "API_URL": f'"API_URL": "{DEFAULT_API_URL}",  # or https://us1.api.voucherify.io, '
    "https://as1.api.voucherify.io",
    "CONNECT_TIMEOUT": '"CONNECT_TIMEOUT": 3.05,  # seconds',
    "READ_TIMEOUT": '"READ_TIMEOUT": 30,  # seconds',
    "HTTP_RETRIES": '"HTTP_RETRIES": 2,  # retries of one call on transient failures',
    "HTTP_BACKOFF_BASE": '"HTTP_BACKOFF_BASE": 0.5,  # seconds',
    "HTTP_BACKOFF_MAX": '"HTTP_BACKOFF_MAX": 8,  # seconds',
    "HTTP_MAX_RETRY_WAIT": '"HTTP_MAX_RETRY_WAIT": 30,  # seconds',
    "LOG_HTTP_BODIES": '"LOG_HTTP_BODIES": DEBUG,  # request and response bodies, for debugging',
    "ORDER_MODEL": '"ORDER_MODEL": "shop.Order",',
    "MAPPER": '"MAPPER": "shop.voucherify.ShopOrderMapper",',
    "TRIGGERS": '"TRIGGERS": {"shop.OrderItem": "order"},  # related model -> its order field',
    "AUTO_SYNC": '"AUTO_SYNC": True,',
    "RATE_LIMIT": '"RATE_LIMIT": "100/m",  # or None; per second (s), minute (m) or hour (h)',
    "MAX_ATTEMPTS": '"MAX_ATTEMPTS": None,  # or the most tries of a change, the first included',
    "RETRY_FOR": '"RETRY_FOR": 86400,  # seconds a transient failure is retried for (a day)',
    "AUTH_PROBE_EVERY": '"AUTH_PROBE_EVERY": 60,  # seconds between tries of refused credentials',
    "RETRY_BACKOFF_BASE": '"RETRY_BACKOFF_BASE": 2,  # seconds',
    "RETRY_BACKOFF_MAX": '"RETRY_BACKOFF_MAX": 600,  # seconds',
    "PUSH_DELAY": '"PUSH_DELAY": 0.5,  # seconds to wait so a burst of saves is one push',
    "LEASE_SECONDS": '"LEASE_SECONDS": 120,',
    "SWEEP_AFTER": '"SWEEP_AFTER": 60,  # seconds before a pending order is re-enqueued',
    "SWEEP_ORPHANS_WITHIN": '"SWEEP_ORPHANS_WITHIN": 86400,  # seconds; 0: never look',
    "ATTEMPT_RETENTION_DAYS": '"ATTEMPT_RETENTION_DAYS": 14,',
    "CELERY_QUEUE": '"CELERY_QUEUE": "voucherify",  # or None for the default queue',
    "EXPORT_STORAGE": '"EXPORT_STORAGE": "voucherify_exports",  # a key of STORAGES, not "default"',
    "EXPORT_RETENTION_DAYS": '"EXPORT_RETENTION_DAYS": 7,  # or None to keep export CSVs',
    "OSCAR": '"OSCAR": {"STATUS_MAP": {"Paid": "PAID"}},  # contrib.oscar; see docs/oscar.md',
}
SECRET_KEYS = frozenset({"SECRET_KEY"})


@dataclass(frozen=True)
class RateLimit:
    """``"100/m"``: at most ``count`` calls in any window of ``period`` seconds."""

    count: int
    period: float

    UNITS: ClassVar[dict[str, float]] = {"s": 1.0, "m": 60.0, "h": 3600.0}

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        count, _, unit = text.strip().partition("/")
        if not count.isdigit() or int(count) < 1 or unit not in cls.UNITS:
            raise ValueError('must look like "100/m" (per s, m or h)')
        return cls(int(count), cls.UNITS[unit])


class VoucherifyOrdersSettings(BaseModel):
    """The validated ``VOUCHERIFY_ORDERS`` dict. Keys are upper case, as in settings.py."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    app_id: str = Field(alias="APP_ID", min_length=1)
    secret_key: SecretStr = Field(alias="SECRET_KEY")
    api_url: str = Field(DEFAULT_API_URL, alias="API_URL")
    connect_timeout: float = Field(3.05, alias="CONNECT_TIMEOUT", gt=0)
    read_timeout: float = Field(30.0, alias="READ_TIMEOUT", gt=0)
    http_retries: int = Field(2, alias="HTTP_RETRIES", ge=0, le=10)
    http_backoff_base: float = Field(0.5, alias="HTTP_BACKOFF_BASE", ge=0)
    http_backoff_max: float = Field(8.0, alias="HTTP_BACKOFF_MAX", ge=0)
    http_max_retry_wait: float = Field(30.0, alias="HTTP_MAX_RETRY_WAIT", ge=0)
    log_http_bodies: bool = Field(False, alias="LOG_HTTP_BODIES")

    # Live sync (receivers, outbox, push engine).
    order_model: str | None = Field(None, alias="ORDER_MODEL", pattern=r"^\w+\.\w+$")
    mapper: str | None = Field(None, alias="MAPPER", pattern=r"^[\w.]+\.\w+$")
    triggers: dict[str, str] = Field(default_factory=dict, alias="TRIGGERS")
    auto_sync: bool = Field(True, alias="AUTO_SYNC")
    rate_limit: RateLimit | None = Field(None, alias="RATE_LIMIT")
    # Transient failures are retried for RETRY_FOR seconds from the first failure of a
    # run; MAX_ATTEMPTS (tries, the first included) ends a run earlier when set.
    max_attempts: int | None = Field(None, alias="MAX_ATTEMPTS", ge=1)
    retry_for: float = Field(86400.0, alias="RETRY_FOR", gt=0)
    auth_probe_every: float = Field(60.0, alias="AUTH_PROBE_EVERY", gt=0)
    retry_backoff_base: float = Field(2.0, alias="RETRY_BACKOFF_BASE", ge=0)
    retry_backoff_max: float = Field(600.0, alias="RETRY_BACKOFF_MAX", ge=0)
    push_delay: float = Field(0.5, alias="PUSH_DELAY", ge=0)
    lease_seconds: float = Field(120.0, alias="LEASE_SECONDS", gt=0)
    sweep_after: float = Field(60.0, alias="SWEEP_AFTER", gt=0)
    # How far back (by the mapper's date_field) the sweep looks for orders with no outbox
    # row at all: saved in autocommit by a process that died before its post_save.
    sweep_orphans_within: float = Field(86400.0, alias="SWEEP_ORPHANS_WITHIN", ge=0)
    attempt_retention_days: int = Field(14, alias="ATTEMPT_RETENTION_DAYS", ge=0)
    celery_queue: str | None = Field(None, alias="CELERY_QUEUE")
    # Export CSVs: a STORAGES key (None: see export_storage.py), kept this many days.
    export_storage: str | None = Field(None, alias="EXPORT_STORAGE", min_length=1)
    export_retention_days: int | None = Field(7, alias="EXPORT_RETENTION_DAYS", ge=1)
    # Options of contrib.oscar's mapper, validated there (docs/oscar.md).
    oscar: dict[str, Any] = Field(default_factory=dict, alias="OSCAR")

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _parse_rate_limit(cls, value: Any) -> Any:
        return RateLimit.parse(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _mapper_with_model(self) -> VoucherifyOrdersSettings:
        if self.order_model and not self.mapper:
            raise ValueError("MAPPER is required when ORDER_MODEL is set")
        return self

    @property
    def sync_enabled(self) -> bool:
        return bool(self.order_model)

    @field_validator("secret_key")
    @classmethod
    def _secret_not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("must not be empty")
        return value

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL")
        if parts.path.rstrip("/") or parts.query:
            raise ValueError("must be the API's base URL, without a path (no /v1)")
        return value.rstrip("/")

    @property
    def api_url_is_insecure(self) -> bool:
        """Plain http to anything but this machine would send the secret key in clear text."""
        parts = urlsplit(self.api_url)
        return parts.scheme == "http" and not _is_local(parts.hostname or "")

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_retries=self.http_retries,
            backoff_base=self.http_backoff_base,
            backoff_max=self.http_backoff_max,
            max_wait=self.http_max_retry_wait,
        )


def _is_local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the setting; both the exception and the system checks use it."""

    check_id: str
    key: str | None
    message: str
    hint: str


def check_settings(raw: Any) -> list[ConfigProblem]:
    """Everything wrong with ``raw`` (the ``VOUCHERIFY_ORDERS`` value), without raising."""
    if raw is None:
        return [
            ConfigProblem(
                "vo.E001",
                None,
                f"The {SETTING} setting is missing.",
                f"Add to your settings:\n\n{_template()}",
            )
        ]
    if not isinstance(raw, dict):
        return [
            ConfigProblem(
                "vo.E001",
                None,
                f"{SETTING} must be a dict, not {type(raw).__name__}.",
                f"Write it as:\n\n{_template()}",
            )
        ]
    try:
        VoucherifyOrdersSettings.model_validate(raw)
    except ValidationError as exc:
        return [_problem(raw, error) for error in exc.errors()]
    return []


def _problem(raw: dict[Any, Any], error: Any) -> ConfigProblem:
    key = str(error["loc"][0]) if error["loc"] else None
    if key is None:  # a rule across keys, e.g. "MAPPER is required when ORDER_MODEL is set"
        message = error["msg"].removeprefix("Value error, ")
        named = next((name for name in EXAMPLE_LINES if message.startswith(name)), None)
        hint = f"Add this line to the {SETTING} dict:\n    {EXAMPLE_LINES[named]}" if named else ""
        return ConfigProblem("vo.E002", named, f"{SETTING}: {message}.", hint)
    if error["type"] == "missing":
        return ConfigProblem(
            "vo.E002",
            key,
            f'{SETTING}["{key}"] is missing.',
            f"Add this line to the {SETTING} dict in your settings:\n    {EXAMPLE_LINES[str(key)]}",
        )
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(key), EXAMPLE_LINES, n=1)
        hint = (
            f'Did you mean "{close[0]}"?' if close else f"Known keys: {', '.join(EXAMPLE_LINES)}."
        )
        return ConfigProblem("vo.E004", key, f'{SETTING} has an unknown key "{key}".', hint)
    # Never echo the secret key's value, not even a wrong one: it may be a real key.
    shown = "(hidden)" if key in SECRET_KEYS else repr(raw.get(key))
    message = error["msg"].removeprefix("Value error, ")
    return ConfigProblem(
        "vo.E003",
        key,
        f'{SETTING}["{key}"] = {shown} is not valid: {message}.',
        f"Write it as:\n    {EXAMPLE_LINES.get(str(key), '')}",
    )


def _template() -> str:
    lines = [EXAMPLE_LINES["APP_ID"], EXAMPLE_LINES["SECRET_KEY"], EXAMPLE_LINES["API_URL"]]
    body = "\n".join(f"        {line}" for line in lines)
    return f"    {SETTING} = {{\n{body}\n    }}"


_cache_lock = threading.Lock()
_cache: tuple[int, VoucherifyOrdersSettings] | None = None


def get_settings() -> VoucherifyOrdersSettings:
    """The validated settings; raises ``VoucherifyConfigurationError`` naming the line to fix."""
    global _cache
    raw = getattr(django_settings, SETTING, None)
    cached = _cache
    if cached is not None and cached[0] == id(raw):
        return cached[1]
    problems = check_settings(raw)
    if problems:
        raise VoucherifyConfigurationError(
            "\n\n".join(f"{problem.message}\n{problem.hint}" for problem in problems)
        )
    validated = VoucherifyOrdersSettings.model_validate(raw)
    with _cache_lock:
        _cache = (id(raw), validated)
    return validated


@receiver(setting_changed)
def _forget_settings(*, setting: str, **kwargs: Any) -> None:
    global _cache
    if setting == SETTING:
        _cache = None
        _clients.__dict__.clear()


_clients = threading.local()


def get_client(*, retries: bool = True) -> VoucherifyClient:
    """This thread's client for the configured project (sessions are per thread).

    ``retries=False`` gives a client that makes one attempt per call: the push engine
    reschedules a failed push instead of holding a worker asleep. Every request of either
    takes a slot of the shared ``RATE_LIMIT``, waiting at most ``HTTP_MAX_RETRY_WAIT``
    seconds for one (a worker's client: ``MAX_WORKER_WAIT``), else ``RateLimitBusy``.
    """
    # sync/ builds on this module: imported here, when the first client is made.
    from .sync.limiter import MAX_WORKER_WAIT, SharedRateLimiter, SlotGate

    config = get_settings()
    cached = getattr(_clients, "entry", None)
    if cached is not None and cached[0] is config and retries in cached[1]:
        return cached[1][retries]
    if cached is None or cached[0] is not config:
        by_kind: dict[bool, VoucherifyClient] = {}
        cached = (config, by_kind)
        _clients.entry = cached
    limiter = SharedRateLimiter(config.rate_limit)
    client = VoucherifyClient(
        config.app_id,
        config.secret_key.get_secret_value(),
        config.api_url,
        timeout=(config.connect_timeout, config.read_timeout),
        retry=config.retry_policy() if retries else RetryPolicy(max_retries=0),
        log_bodies=config.log_http_bodies,
        gate=SlotGate(limiter, config.http_max_retry_wait if retries else MAX_WORKER_WAIT),
        observers=[limiter.observe],
    )
    cached[1][retries] = client
    return client
