"""The default tier: generous enough for a self-hosted install, tight enough to stop a runaway client.
Staff change it (or add tiers and assign them to organizations) in the admin."""

from django.db import migrations

DEFAULT = {
    "name": "Default",
    "is_default": True,
    "requests_per_minute": 600,
    "requests_per_day": 100_000,
    "tokens_per_minute": 1_000_000,
    "documents_per_minute": 2_000,
    "documents_per_day": 100_000,
}


def create_default_plan(apps, schema_editor):
    Plan = apps.get_model("quotas", "Plan")
    if not Plan.objects.filter(is_default=True).exists():
        Plan.objects.create(**DEFAULT)


class Migration(migrations.Migration):
    dependencies = [("quotas", "0001_plans")]

    operations = [migrations.RunPython(create_default_plan, migrations.RunPython.noop)]
