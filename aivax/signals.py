"""Cross-app events. Apps subscribe in their AppConfig.ready(), so accounts needs no import of billing."""

from django.dispatch import Signal

# Sent with `organization=` once a new organization and its owner membership exist (inside the transaction).
organization_created = Signal()

# Sent by `manage.py seed_demo` with `organization=`, `owner=`, `local_model_url=`; a receiver that sets up the
# demo gateway returns its addressable name, which the command prints in its snippets.
demo_seeded = Signal()
