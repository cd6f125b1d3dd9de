from django.apps import AppConfig


class AivaxConfig(AppConfig):
    name = "aivax"
    verbose_name = "aivax platform"
