import os

from celery import Celery

# The Celery CLI (`celery -A aivax worker`) imports this module first; default to the production settings there
# (`make run` sets the dev ones). Record whether we defaulted, so the test plugin can tell our default from a
# setting the user chose.
SETTINGS_DEFAULTED = "DJANGO_SETTINGS_MODULE" not in os.environ
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aivax.settings.production")

app = Celery("aivax")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
