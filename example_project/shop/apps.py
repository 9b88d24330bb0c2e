from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = "Shop"
    # Pinned so the project's DEFAULT_AUTO_FIELD never makes the shipped migrations stale.
    default_auto_field = "django.db.models.BigAutoField"
