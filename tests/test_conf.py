"""The VOUCHERIFY_ORDERS setting: validation, messages that show the fix, system checks."""

from __future__ import annotations

import pytest
from django.core.checks import Tags, run_checks
from django.test import override_settings

from django_voucherify_orders.client import VoucherifyConfigurationError
from django_voucherify_orders.conf import get_client, get_settings

GOOD = {"APP_ID": "app", "SECRET_KEY": "sk_live_very_secret"}


def _check_ids() -> list[str]:
    return [m.id for m in run_checks(tags=[Tags.compatibility]) if m.id and m.id.startswith("vo.")]


def test_defaults_fill_the_optional_keys():
    with override_settings(VOUCHERIFY_ORDERS=GOOD):
        config = get_settings()
    assert config.api_url == "https://api.voucherify.io"
    assert config.retry_policy().max_retries == 2
    assert (config.connect_timeout, config.read_timeout) == (3.05, 30.0)


def test_settings_are_read_at_call_time():
    with override_settings(VOUCHERIFY_ORDERS={**GOOD, "API_URL": "https://us1.api.voucherify.io"}):
        assert get_settings().api_url == "https://us1.api.voucherify.io"
        assert get_client().api_url == "https://us1.api.voucherify.io"
    with override_settings(VOUCHERIFY_ORDERS={**GOOD, "API_URL": "https://as1.api.voucherify.io/"}):
        assert get_settings().api_url == "https://as1.api.voucherify.io"
        assert get_client().api_url == "https://as1.api.voucherify.io"


def test_client_is_reused_within_a_thread():
    with override_settings(VOUCHERIFY_ORDERS=GOOD):
        assert get_client() is get_client()


@pytest.mark.parametrize(
    ("value", "check_id", "shown"),
    [
        (None, "vo.E001", 'VOUCHERIFY_ORDERS = {'),
        ("app:secret", "vo.E001", "must be a dict"),
        ({"SECRET_KEY": "x"}, "vo.E002", '"APP_ID": os.environ["VOUCHERIFY_APP_ID"],'),
        ({"APP_ID": "app"}, "vo.E002", '"SECRET_KEY": os.environ["VOUCHERIFY_SECRET_KEY"],'),
        ({**GOOD, "API_URL": "api.voucherify.io"}, "vo.E003", "must be an http(s) URL"),
        ({**GOOD, "API_URL": "https://api.voucherify.io/v1"}, "vo.E003", "without a path"),
        ({**GOOD, "READ_TIMEOUT": 0}, "vo.E003", '"READ_TIMEOUT": 30,'),
        ({**GOOD, "HTTP_RETRIES": "many"}, "vo.E003", "HTTP_RETRIES"),
        ({**GOOD, "APP_Id": "x"}, "vo.E004", 'Did you mean "APP_ID"?'),
    ],
)  # fmt: skip
def test_bad_settings_raise_and_are_reported_by_checks(value, check_id, shown):
    with override_settings(VOUCHERIFY_ORDERS=value):
        with pytest.raises(VoucherifyConfigurationError) as caught:
            get_settings()
        assert shown in str(caught.value)
        assert check_id in _check_ids()


def test_a_bad_secret_key_value_is_never_echoed():
    secret = ["sk_live_a_real_key_in_a_list"]
    with override_settings(VOUCHERIFY_ORDERS={"APP_ID": "a", "SECRET_KEY": secret}):
        with pytest.raises(VoucherifyConfigurationError) as caught:
            get_settings()
        assert "sk_live_a_real_key" not in str(caught.value)
        assert "(hidden)" in str(caught.value)
        messages = [m.msg + (m.hint or "") for m in run_checks(tags=[Tags.compatibility])]
    assert all("sk_live_a_real_key" not in m for m in messages)


def test_configuration_error_is_not_a_voucherify_error():
    from django.core.exceptions import ImproperlyConfigured

    from django_voucherify_orders.client import VoucherifyError

    assert issubclass(VoucherifyConfigurationError, ImproperlyConfigured)
    assert not issubclass(VoucherifyConfigurationError, VoucherifyError)


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://example.com", True),
        ("http://10.0.0.5:8787", True),
        ("http://127.0.0.1:8787", False),
        ("http://localhost:8787", False),
        ("http://[::1]:8787", False),
        ("https://api.voucherify.io", False),
    ],
)
def test_plain_http_to_a_remote_host_is_warned_about(url, warned):
    with override_settings(VOUCHERIFY_ORDERS={**GOOD, "API_URL": url}):
        assert ("vo.W001" in _check_ids()) is warned


@pytest.mark.parametrize(
    ("log_bodies", "debug", "warned"),
    [(True, False, True), (True, True, False), (False, False, False)],
    ids=["bodies-in-production", "bodies-in-development", "bodies-off"],
)
def test_logging_bodies_without_debug_is_warned_about(log_bodies, debug, warned):
    with override_settings(VOUCHERIFY_ORDERS={**GOOD, "LOG_HTTP_BODIES": log_bodies}, DEBUG=debug):
        assert ("vo.W002" in _check_ids()) is warned
        assert get_client().log_bodies is log_bodies


def test_valid_settings_pass_the_checks():
    with override_settings(VOUCHERIFY_ORDERS=GOOD):
        assert _check_ids() == []
    assert "sk_live_very_secret" not in repr(get_settings_for(GOOD))


def get_settings_for(raw):
    with override_settings(VOUCHERIFY_ORDERS=raw):
        return get_settings()
