"""The console's one place for the parts of other apps that may not exist yet (knowledge, billing, inference).

Each helper returns None when the other app does not provide the model or function yet, so the console works
before those apps land and lights up as they do.
"""

from __future__ import annotations

import importlib
from typing import Any

from django.db import models

from accounts.models import Organization


def _attr(module: str, name: str) -> Any | None:
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


def model(app_module: str, name: str) -> type[models.Model] | None:
    found = _attr(f"{app_module}.models", name)
    return found if isinstance(found, type) and issubclass(found, models.Model) else None


def function(module: str, name: str) -> Any | None:
    found = _attr(module, name)
    return found if callable(found) else None


def collection_model() -> type[models.Model] | None:
    return model("knowledge", "Collection")


def document_model() -> type[models.Model] | None:
    return model("knowledge", "Document")


def gateway_links_collections() -> bool:
    from gateways.models import Gateway

    return any(f.name == "knowledge_collection" for f in Gateway._meta.get_fields())


def collections_for(organization: Organization) -> list[Any] | None:
    """The organization's knowledge collections, or None when gateways cannot link one yet."""
    collection = collection_model()
    if collection is None or not gateway_links_collections():
        return None
    return list(collection.objects.for_org(organization).order_by("name"))
