from django.contrib import admin

from django_voucherify_orders.admin import VoucherifySyncAdminMixin

from .models import Customer, Order, OrderItem, Product


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "city", "country", "created_at"]
    search_fields = ["name", "email"]
    list_filter = ["country"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "price", "currency"]
    search_fields = ["sku", "name"]


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 1
    raw_id_fields = ["product"]


@admin.register(Order)
class OrderAdmin(VoucherifySyncAdminMixin, admin.ModelAdmin):
    """The mixin adds a Voucherify column, filter and actions, and a sync panel."""

    # The mixin appends its column; naming it here puts it beside the status.
    list_display = [
        "number", "customer", "status", "voucherify_sync_state",
        "currency", "discount", "created_at",
    ]  # fmt: skip
    list_filter = ["status", "currency"]
    list_select_related = ["customer"]
    search_fields = ["number", "customer__email", "customer__name"]
    date_hierarchy = "created_at"
    raw_id_fields = ["customer"]
    readonly_fields = ["updated_at"]
    inlines = [OrderItemInline]
