"""Template helpers for the console: icons from the vendored sprite, the current navigation entry."""

from __future__ import annotations

from django import template
from django.http import HttpRequest
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()


@register.simple_tag
def icon(name: str, size: str = "") -> str:
    css = f"icon icon-{size}" if size else "icon"
    href = f"{static('vendor/lucide/icons.svg')}#{name}"
    return format_html('<svg class="{}" aria-hidden="true" focusable="false"><use href="{}"></use></svg>', css, href)


@register.simple_tag(takes_context=True)
def current(context: template.Context, prefix: str) -> str:
    """`aria-current="page"` on the navigation link whose path prefix the current page is under."""
    request: HttpRequest | None = context.get("request")
    if request is None:
        return ""
    path = request.path
    hit = path == prefix if prefix.endswith("/console/") else path.startswith(prefix)
    return mark_safe('aria-current="page"') if hit else ""  # a constant


@register.filter
def dict_get(mapping: dict, key: object) -> object:
    return mapping.get(key) if isinstance(mapping, dict) else None
