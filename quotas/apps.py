from django.apps import AppConfig


class QuotasConfig(AppConfig):
    name = "quotas"
    verbose_name = "Plans and rate limits"

    def ready(self) -> None:
        from quotas import signals  # noqa: F401  (cache invalidation on plan/organization changes)
