from django.contrib import admin

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
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "customer", "status", "currency", "discount", "created_at"]
    list_filter = ["status", "currency"]
    list_select_related = ["customer"]
    search_fields = ["number", "customer__email", "customer__name"]
    date_hierarchy = "created_at"
    raw_id_fields = ["customer"]
    readonly_fields = ["updated_at"]
    inlines = [OrderItemInline]
