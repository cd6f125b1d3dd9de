"""Any change to an API key (admin, services, shell) drops its cached record at once and again on commit, so a
revocation or an edit applies to the next request in every process. The cache is Redis only: no process keeps
a copy of its own."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.auth import forget_cached_key
from accounts.models import ApiKey


@receiver([post_save, post_delete], sender=ApiKey)
def _api_key_changed(sender: type, instance: ApiKey, **kwargs: Any) -> None:
    prefix = instance.prefix
    changed = not kwargs.get("created", False)  # a new key has nothing stale to guard against
    forget_cached_key(prefix, changed=changed)
    # Again after commit: a request that read the old row before the commit may have cached it meanwhile.
    transaction.on_commit(lambda: forget_cached_key(prefix, changed=changed))
