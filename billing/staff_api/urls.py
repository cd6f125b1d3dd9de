"""Routes of the staff API, included by aivax/urls.py at /api/staff/."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from billing.staff_api import views

app_name = "staff-api"

urlpatterns = [
    path("", views.Root.as_view(), name="root"),
    path("organizations/", views.OrganizationList.as_view(), name="organizations"),
    path("organizations/<slug:slug>/", views.OrganizationDetail.as_view(), name="organization"),
    path("organizations/<slug:slug>/credits/", views.CreditGrant.as_view(), name="credit"),
    path("organizations/<slug:slug>/statements/", views.StatementMonths.as_view(), name="statements"),
    path(
        "organizations/<slug:slug>/statements/<int:year>/<int:month>/",
        views.StatementDetail.as_view(),
        name="statement",
    ),
    path("ledger/", views.LedgerList.as_view(), name="ledger"),
    path("ledger/<int:pk>/reverse/", views.EntryReverse.as_view(), name="reverse"),
    path("requests/", views.BilledRequestList.as_view(), name="requests"),
    path("requests/<str:request_id>/", views.BilledRequestDetail.as_view(), name="request"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("auth/", include("rest_framework.urls", namespace="rest_framework")),
]
