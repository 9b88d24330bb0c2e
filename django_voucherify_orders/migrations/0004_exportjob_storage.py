import django_voucherify_orders.export_storage
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("voucherify_orders", "0003_ordersync_first_failed_at"),
    ]

    operations = [
        migrations.AlterField(
            model_name="exportjob",
            name="file",
            field=models.FileField(
                blank=True,
                storage=django_voucherify_orders.export_storage.ExportStorage(),
                upload_to="voucherify/exports/",
                verbose_name="CSV file",
            ),
        ),
    ]
