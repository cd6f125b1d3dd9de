"""The ASGI entry point. /api/ requests skip the browser middleware (sessions, CSRF, messages, static files):
each sync middleware costs two thread hops per request under ASGI, and API clients need none of them."""

import os
from typing import cast

from django.core.asgi import get_asgi_application

# Production unless told otherwise: `make run` (aivax/stack.py) and manage.py choose the dev settings themselves.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aivax.settings.production")

django_application = get_asgi_application()

from aivax.admission import AdmissionLimit  # noqa: E402
from aivax.asgi_routing import ApiASGIHandler, BodyLimit, warm_up  # noqa: E402  (needs Django set up)
from aivax.asgi_types import App, Receive, Scope, Send  # noqa: E402
from aivax.observability import RequestObserver  # noqa: E402

# Django's stubs type the handler for Mapping messages; it takes any ASGI message like the others.
api_application = AdmissionLimit(cast(App, ApiASGIHandler()))
warm_up()


async def _route(scope: Scope, receive: Receive, send: Send) -> None:
    # The staff API (DRF) wants sessions and CSRF for the browser: it takes the full middleware stack.
    if scope["type"] == "http" and scope["path"].startswith("/api/") and not scope["path"].startswith("/api/staff/"):
        await api_application(scope, receive, send)
    else:
        await cast(App, django_application)(scope, receive, send)


# Request ids, access lines and metrics around both handlers; /metrics itself (aivax/observability.py).
# Oversized bodies are refused before they are read (aivax/asgi_routing.py).
application = RequestObserver(BodyLimit(_route))
