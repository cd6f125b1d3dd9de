"""The web container's health check: GET /readyz on this container, with a Host that ALLOWED_HOSTS accepts."""

import os
import sys
import urllib.request

hosts = [h.strip().lstrip(".") for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
host = next((h for h in hosts if h != "*"), "localhost")
request = urllib.request.Request(f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/readyz", headers={"Host": host})
try:
    with urllib.request.urlopen(request, timeout=4) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # any failure is "unhealthy"; say why in `docker inspect`
    print(f"unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)
