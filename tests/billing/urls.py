"""The project's URLs plus the billing staff pages (in case aivax/urls.py does not include them yet)."""

from django.urls import URLResolver, include, path

from aivax.urls import urlpatterns as project_urlpatterns

_included = any(isinstance(p, URLResolver) and p.namespace == "billing-staff" for p in project_urlpatterns)
urlpatterns = list(project_urlpatterns)
if not _included:
    urlpatterns.append(path("staff/billing/", include("billing.staff_urls")))
