from django.db import migrations, models


def _limit(name):
    return models.PositiveIntegerField(blank=True, help_text="Empty: unlimited.", null=True, verbose_name=name)


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Plan",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=60, unique=True)),
                (
                    "is_default",
                    models.BooleanField(
                        default=False,
                        help_text="Applies to every organization without a plan of its own (exactly one plan).",
                    ),
                ),
                ("requests_per_minute", _limit("requests per minute")),
                ("requests_per_day", _limit("requests per day")),
                ("tokens_per_minute", _limit("tokens per minute")),
                ("documents_per_minute", _limit("documents per minute")),
                ("documents_per_day", _limit("documents per day")),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.AddConstraint(
            model_name="plan",
            constraint=models.UniqueConstraint(
                condition=models.Q(("is_default", True)),
                fields=("is_default",),
                name="one_default_plan",
                violation_error_message="Only one plan can be the default: untick the current default first.",
            ),
        ),
    ]
