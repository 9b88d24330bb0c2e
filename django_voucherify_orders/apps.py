from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VoucherifyOrdersConfig(AppConfig):
    name = "django_voucherify_orders"
    label = "voucherify_orders"
    verbose_name = _("Voucherify orders")
    # Pinned so a host project's DEFAULT_AUTO_FIELD never makes our migrations stale.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks
        from .sync import receivers

        checks.register()
        receivers.connect()
