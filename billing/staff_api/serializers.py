"""Input and output shapes of the staff API. Money is a decimal string, never a float."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from rest_framework import serializers

from billing.models import LEDGER_EXPORT_COLUMNS, BilledRequest, LedgerEntry
from billing.money import MONEY_MAX_DIGITS, MONEY_PLACES


def _money(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_PLACES, **kwargs)


class OrganizationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.SlugField()
    name = serializers.CharField()
    created_at = serializers.DateTimeField()
    balance = _money()
    reserved = _money()
    credit_limit = _money()


class LedgerEntrySerializer(serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = LedgerEntry
        fields = ["id", *LEDGER_EXPORT_COLUMNS]
        read_only_fields = fields


class BilledRequestSerializer(serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = BilledRequest
        fields = ["request_id", "created_at", "organization", "gateway_id", "api_key_id", "model", "metadata"]
        read_only_fields = fields


class BilledRequestDetailSerializer(BilledRequestSerializer):
    entries = LedgerEntrySerializer(many=True, read_only=True)

    class Meta(BilledRequestSerializer.Meta):
        fields = [*BilledRequestSerializer.Meta.fields, "entries"]
        read_only_fields = fields


class StatementLineSerializer(serializers.Serializer):
    kind = serializers.CharField()
    sku = serializers.CharField()
    entries = serializers.IntegerField()
    quantity = serializers.IntegerField()
    amount = _money()
    balance_delta = _money()


class StatementMonthSerializer(serializers.Serializer):
    year = serializers.IntegerField()
    month = serializers.IntegerField()
    url = serializers.URLField()


class StatementSerializer(serializers.Serializer):
    organization = serializers.CharField(source="organization.slug")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    opening_balance = _money()
    charges = _money()
    credits = _money()
    reversals = _money()
    closing_balance = _money()
    lines = StatementLineSerializer(many=True)


class RangeFilterSerializer(serializers.Serializer):
    """`start` and `end` are whole UTC days, both included (as on the staff pages); both optional."""

    organization = serializers.SlugField(required=False)
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("start"), attrs.get("end")
        if start and end and start > end:
            raise serializers.ValidationError({"start": "The start date must not be after the end date."})
        return attrs

    @staticmethod
    def bounds(attrs: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
        start: date | None = attrs.get("start")
        end: date | None = attrs.get("end")
        return (
            datetime.combine(start, time.min, tzinfo=UTC) if start else None,
            datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC) if end else None,
        )


class LedgerFilterSerializer(RangeFilterSerializer):
    sku = serializers.CharField(required=False, max_length=100)
    gateway = serializers.UUIDField(required=False)
    request_id = serializers.CharField(required=False, max_length=100)


class CreditInputSerializer(serializers.Serializer):
    amount = _money(min_value=Decimal("0.0000000001"))
    reason = serializers.CharField(max_length=1000, allow_blank=False, trim_whitespace=True)


class ReverseInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, allow_blank=False, trim_whitespace=True)
