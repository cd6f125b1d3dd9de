"""Signal receivers, connected in BillingConfig.ready()."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from aivax.signals import organization_created


def _create_account(sender: Any, organization: Any, **kwargs: Any) -> None:
    from decimal import Decimal

    from django.conf import settings

    from billing.services import account_ensure, credit_grant

    account_ensure(organization_id=organization.pk)
    welcome = Decimal(str(settings.SIGNUP_CREDIT))
    if welcome > 0:
        # A new organization can try its first gateway at once; operators set SIGNUP_CREDIT (0 = none).
        credit_grant(organization=organization, amount=welcome, reason="sign-up credit", staff_user=None)


def _prices_changed(sender: Any, **kwargs: Any) -> None:
    from billing.pricing import invalidate_price_cache

    invalidate_price_cache()
    # Again once committed: a reload between the save and the commit would have cached the old rows.
    transaction.on_commit(invalidate_price_cache)


def connect() -> None:
    from billing.models import Price

    organization_created.connect(_create_account, dispatch_uid="billing.create_account")
    post_save.connect(_prices_changed, sender=Price, dispatch_uid="billing.price_saved")
    post_delete.connect(_prices_changed, sender=Price, dispatch_uid="billing.price_deleted")
