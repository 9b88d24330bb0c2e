"""Django system checks for the ``VOUCHERIFY_ORDERS`` setting (ids ``vo.E001`` ...).

Ids are stable: users silence them with ``SILENCED_SYSTEM_CHECKS``.

- vo.E001  the setting is missing or not a dict
- vo.E002  a required key is missing
- vo.E003  a key has an invalid value
- vo.E004  an unknown key (a typo, usually)
- vo.W001  API_URL is plain http to a host other than this machine
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage, Error, Tags, Warning

from .conf import SETTING, VoucherifyOrdersSettings, check_settings


def register() -> None:
    """Called from AppConfig.ready()."""
    checks.register(check_voucherify_settings, Tags.compatibility)


def check_voucherify_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(settings, SETTING, None)
    problems = check_settings(raw)
    messages: list[CheckMessage] = [
        Error(problem.message, hint=problem.hint, id=problem.check_id) for problem in problems
    ]
    if not problems and VoucherifyOrdersSettings.model_validate(raw).api_url_is_insecure:
        messages.append(
            Warning(
                f'{SETTING}["API_URL"] uses plain http to a remote host: '
                "the secret key would cross the network unencrypted.",
                hint="Use https:// (plain http is only meant for an emulator on localhost).",
                id="vo.W001",
            )
        )
    return messages
