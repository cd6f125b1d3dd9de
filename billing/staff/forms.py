"""Forms of the staff pages: a date range with filters, a credit grant, a reversal."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone

from accounts.models import Organization
from billing.money import MONEY_MAX_DIGITS, MONEY_PLACES

GROUP_CHOICES = [
    ("organization", "Organization"),
    ("gateway", "Gateway"),
    ("key", "API key"),
    ("model", "Model"),
    ("sku", "SKU"),
    ("day", "Day"),
]


def _month_start() -> date:
    return timezone.now().date().replace(day=1)


class RangeForm(forms.Form):
    """`start`..`end` are whole UTC days, both included."""

    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    organization = forms.ModelChoiceField(
        Organization.objects.order_by("slug"), required=False, to_field_name="slug", empty_label="All organizations"
    )
    group_by = forms.ChoiceField(choices=GROUP_CHOICES, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start = data.get("start") or _month_start()
        end = data.get("end") or timezone.now().date()
        if start > end:
            raise forms.ValidationError("The start date must not be after the end date.")
        data["start"], data["end"] = start, end
        data["group_by"] = data.get("group_by") or "organization"
        return data

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        start, end = self.cleaned_data["start"], self.cleaned_data["end"]
        return datetime.combine(start, time.min, tzinfo=UTC), datetime.combine(end + timedelta(1), time.min, tzinfo=UTC)

    @property
    def organization_id(self) -> int | None:
        org = self.cleaned_data.get("organization")
        return org.pk if org else None


class CreditForm(forms.Form):
    amount = forms.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_PLACES, min_value=Decimal("0.0000000001"), label="USD"
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=1000)


class ReverseForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=1000)
