"""Template helpers for the console: icons from the vendored sprite, the current navigation entry."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.http import HttpRequest
from django.templatetags.static import static
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

register = template.Library()


@register.simple_tag
def icon(name: str, size: str = "") -> str:
    css = f"icon icon-{size}" if size else "icon"
    href = f"{static('vendor/lucide/icons.svg')}#{name}"
    return format_html('<svg class="{}" aria-hidden="true" focusable="false"><use href="{}"></use></svg>', css, href)


SECTIONS = [
    ("playground", ("/console/playground", "/playground")),
    ("gateways", ("/console/gateways", "/console/endpoints")),
    ("knowledge", ("/console/knowledge",)),
    ("keys", ("/console/keys",)),
    ("usage", ("/console/usage",)),
    ("members", ("/console/members",)),
]


def section_of(path: str) -> str:
    for name, markers in SECTIONS:
        if any(path.startswith(m) if m.startswith("/console") else m in path for m in markers):
            return name
    return "overview" if path.rstrip("/") == "/console" else ""


@register.simple_tag(takes_context=True)
def current(context: template.Context, section: str) -> str:
    """`aria-current="page"` on the navigation link of the section the current page belongs to."""
    request: HttpRequest | None = context.get("request")
    if request is None or section_of(request.path) != section:
        return ""
    return mark_safe('aria-current="page"')  # a constant


@register.filter
def dict_get(mapping: dict, key: object) -> object:
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def ago(value: datetime | None) -> str:
    """'just now' under a minute, else Django's timesince with 'ago'."""
    if value is None:
        return ""
    if timezone.now() - value < timedelta(minutes=1):
        return "just now"
    return f"{timesince(value)} ago"
