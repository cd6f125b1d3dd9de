"""Staff pages for billing review. Included by aivax/urls.py:
`path("staff/billing/", include("billing.staff_urls"))`."""

from django.urls import path

from billing.staff import export, organizations, reports

app_name = "billing-staff"

urlpatterns = [
    path("", reports.overview, name="overview"),
    path("requests/", reports.request_list, name="requests"),
    path("requests/<str:request_id>/", reports.request_detail, name="request"),
    path("ledger.csv", export.ledger_csv, name="ledger-csv"),
    path("orgs/<slug:slug>/", organizations.organization_detail, name="organization"),
    path("orgs/<slug:slug>/credit/", organizations.organization_credit, name="credit"),
    path("orgs/<slug:slug>/statements/<int:year>/<int:month>/", organizations.statement, name="statement"),
    path("entries/<int:pk>/reverse/", organizations.entry_reverse_view, name="reverse"),
]
