"""Only billing staff (`accounts.view_all_usage`) see these pages; to anyone else they do not exist (404)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache

from accounts.selectors import user_is_billing_staff


def billing_staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    @never_cache
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not (request.user.is_authenticated and user_is_billing_staff(request.user)):
            raise Http404("Not found")
        return view(request, *args, **kwargs)

    return guarded
