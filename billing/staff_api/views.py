"""Thin views: validate the input, call one selector or service, serialize. Audited writes log who and what."""

from __future__ import annotations

from typing import Any

import structlog
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from accounts.models import Organization
from billing import selectors
from billing.models import BilledRequest, LedgerEntry
from billing.services import credit_grant, entry_reverse
from billing.staff_api import serializers as s
from billing.statements import statement_for

audit = structlog.get_logger("aivax.audit")


class NewestFirst(CursorPagination):
    """Stable pages over a table that grows while it is read (a cursor, not an offset)."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class RequestsNewestFirst(NewestFirst):
    ordering = ("-created_at", "-id")


class BySlug(NewestFirst):
    ordering = "slug"


def _filters(serializer_class: type[s.RangeFilterSerializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _organization_id(slug: str | None) -> int | None:
    if not slug:
        return None
    org = Organization.objects.filter(slug=slug).only("pk").first()
    if org is None:
        raise ValidationError({"organization": f"No organization with slug {slug!r}."})
    return org.pk


def _service_error(exc: DjangoValidationError | DjangoPermissionDenied) -> Exception:
    if isinstance(exc, DjangoPermissionDenied):
        return PermissionDenied(str(exc))
    return ValidationError({"detail": exc.messages})


_RANGE = [
    OpenApiParameter("organization", str, description="An organization's slug"),
    OpenApiParameter("start", str, description="First UTC day (YYYY-MM-DD), included"),
    OpenApiParameter("end", str, description="Last UTC day (YYYY-MM-DD), included"),
]


class Root(APIView):
    """The staff billing API. Authenticate with a token (`Authorization: Token <key>`) or a staff session."""

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        names = ["organizations", "ledger", "requests", "schema"]
        return Response({name: reverse(f"staff-api:{name}", request=request) for name in names})


class OrganizationList(generics.ListAPIView):
    """Every organization with its balance, reserved amount and credit limit."""

    serializer_class = s.OrganizationSerializer
    pagination_class = BySlug

    def get_queryset(self) -> QuerySet[Any]:
        return selectors.organizations_with_balances()


class OrganizationDetail(generics.RetrieveAPIView):
    serializer_class = s.OrganizationSerializer
    lookup_field = "slug"

    def get_queryset(self) -> QuerySet[Any]:
        return selectors.organizations_with_balances()


@extend_schema(
    parameters=[
        *_RANGE,
        OpenApiParameter("sku", str),
        OpenApiParameter("gateway", str, description="A gateway's id (UUID)"),
        OpenApiParameter("request_id", str),
    ]
)
class LedgerList(generics.ListAPIView):
    """Ledger rows, newest first, filtered by organization, date range, SKU, gateway and request id."""

    serializer_class = s.LedgerEntrySerializer
    pagination_class = NewestFirst

    def get_queryset(self) -> QuerySet[LedgerEntry]:
        f = _filters(s.LedgerFilterSerializer, self.request)
        start, end = s.RangeFilterSerializer.bounds(f)
        rows = selectors.ledger_entries(
            start=start,
            end=end,
            organization_id=_organization_id(f.get("organization")),
            sku=f.get("sku"),
            gateway_id=f.get("gateway"),
            request_id=f.get("request_id"),
        )
        return rows.select_related("organization", "created_by")


@extend_schema(parameters=_RANGE)
class BilledRequestList(generics.ListAPIView):
    """Billed requests, newest first."""

    serializer_class = s.BilledRequestSerializer
    pagination_class = RequestsNewestFirst

    def get_queryset(self) -> QuerySet[BilledRequest]:
        f = _filters(s.RangeFilterSerializer, self.request)
        start, end = s.RangeFilterSerializer.bounds(f)
        return selectors.recent_requests(start=start, end=end, organization_id=_organization_id(f.get("organization")))


class BilledRequestDetail(APIView):
    """One billed request with every ledger row it produced (charges and any reversals)."""

    @extend_schema(responses=s.BilledRequestDetailSerializer)
    def get(self, request: Request, request_id: str) -> Response:
        billed = selectors.recent_requests().filter(request_id=request_id).first()
        entries = list(selectors.request_entries(request_id=request_id).select_related("organization"))
        if billed is None and not entries:
            raise NotFound()
        if billed is None:  # a credit grant: ledger rows without a billed request
            billed = BilledRequest(request_id=request_id, organization=entries[0].organization)
            billed.created_at = entries[0].created_at
        billed.entries = entries
        return Response(s.BilledRequestDetailSerializer(billed).data)


class StatementMonths(APIView):
    """The months (UTC) with ledger rows for an organization, newest first, with their statement URLs."""

    @extend_schema(operation_id="organizations_statements_list", responses=s.StatementMonthSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        org = get_object_or_404(Organization, slug=slug)
        months = selectors.statement_months(organization_id=org.pk)
        return Response(
            [
                {
                    "year": m.year,
                    "month": m.month,
                    "url": request.build_absolute_uri(f"{m.year}/{m.month}/"),
                }
                for m in months
            ]
        )


class StatementDetail(APIView):
    """A monthly statement: opening balance + the month's rows by kind and SKU = closing balance."""

    @extend_schema(responses=s.StatementSerializer)
    def get(self, request: Request, slug: str, year: int, month: int) -> Response:
        org = get_object_or_404(Organization, slug=slug)
        if not 1 <= month <= 12 or not 2000 <= year <= 9999:
            raise NotFound("No such month.")
        return Response(s.StatementSerializer(statement_for(organization=org, year=year, month=month)).data)


class CreditGrant(APIView):
    """Grant credit to an organization: a new ledger row recording who granted it and why (a reason is required)."""

    @extend_schema(request=s.CreditInputSerializer, responses={201: s.LedgerEntrySerializer})
    def post(self, request: Request, slug: str) -> Response:
        org = get_object_or_404(Organization, slug=slug)
        data = s.CreditInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            entry = credit_grant(
                organization=org,
                amount=data.validated_data["amount"],
                reason=data.validated_data["reason"],
                staff_user=request.user,
            )
        except (DjangoValidationError, DjangoPermissionDenied) as exc:
            raise _service_error(exc) from exc
        audit.info(
            "credit granted", staff_user_id=request.user.pk, organization_id=org.pk, entry_id=entry.pk, via="api"
        )
        return Response(s.LedgerEntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class EntryReverse(APIView):
    """Reverse a ledger row with a new row of the opposite sign (at most once; a reason is required)."""

    @extend_schema(request=s.ReverseInputSerializer, responses={201: s.LedgerEntrySerializer})
    def post(self, request: Request, pk: int) -> Response:
        entry = get_object_or_404(LedgerEntry.unscoped.select_related("organization"), pk=pk)
        data = s.ReverseInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            reversal = entry_reverse(entry=entry, reason=data.validated_data["reason"], staff_user=request.user)
        except (DjangoValidationError, DjangoPermissionDenied) as exc:
            raise _service_error(exc) from exc
        audit.info(
            "entry reversed",
            staff_user_id=request.user.pk,
            organization_id=entry.organization_id,
            entry_id=entry.pk,
            reversal_id=reversal.pk,
            via="api",
        )
        return Response(s.LedgerEntrySerializer(reversal).data, status=status.HTTP_201_CREATED)
