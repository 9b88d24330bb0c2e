"""Settings of the integration tests' Celery workers (``tests.settings`` + Redis + a real
broker + the emulator's HTTP door). The environment says which run and which test: see
``tests/integration/config.py``. The test process applies the same values with
``override_settings`` (see ``conftest.py``)."""

import os

from tests.integration.config import settings_from_env
from tests.settings import *  # noqa: F403
from tests.settings import VOUCHERIFY_ORDERS as _BASE_ORDERS

globals().update(settings_from_env(os.environ, _BASE_ORDERS))
