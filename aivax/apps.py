from django.apps import AppConfig


class AivaxConfig(AppConfig):
    name = "aivax"
    verbose_name = "aivax platform"

    def ready(self) -> None:
        from aivax import log, metrics, tracing

        log.configure()
        tracing.configure()
        log.connect_celery()
        metrics.connect_celery()
