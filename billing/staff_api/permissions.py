"""Who may use the staff API: billing staff (`accounts.view_all_usage`, or superusers)."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.selectors import user_is_billing_staff


class IsBillingStaff(BasePermission):
    """Anonymous callers are asked to authenticate (401/403); a signed-in non-staff user gets a 404, as on the
    staff pages: to them the API does not exist."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if not user_is_billing_staff(user):
            raise NotFound()
        return True
