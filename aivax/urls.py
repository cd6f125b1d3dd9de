from django.contrib import admin
from django.urls import include, path

from aivax.api import api
from aivax.health import healthz, readyz

urlpatterns = [
    path("healthz", healthz),
    path("readyz", readyz),
    path("api/v1/", api.urls),
    path("api/staff/", include("billing.staff_api.urls")),
    path("admin/", admin.site.urls),
    path("staff/billing/", include("billing.staff_urls")),
    path("", include("console.urls")),
]
