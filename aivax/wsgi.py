import os

from django.core.wsgi import get_wsgi_application

# Production unless told otherwise: `make run` (aivax/stack.py) and manage.py choose the dev settings themselves.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aivax.settings.production")

application = get_wsgi_application()
