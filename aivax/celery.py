import os

from celery import Celery

# The Celery CLI (`celery -A aivax worker`) imports this module first; default to the production settings there.
# Importing the aivax package runs this too, so record whether we defaulted: tools that choose their own settings
# (prefer_settings) must be able to tell our default from a setting the user chose.
SETTINGS_DEFAULTED = "DJANGO_SETTINGS_MODULE" not in os.environ
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aivax.settings.production")


def prefer_settings(module: str) -> None:
    """Use ``module`` unless the user set DJANGO_SETTINGS_MODULE (for `make run`: dev; the test plugin: test;
    benchmarks). Call it before Django reads its settings; processes started afterwards inherit the choice."""
    if SETTINGS_DEFAULTED:
        os.environ["DJANGO_SETTINGS_MODULE"] = module


app = Celery("aivax")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
