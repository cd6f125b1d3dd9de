"""Structured logs: one JSON object per line (structlog), each carrying the request it belongs to.

Every line written while serving a request, by our code, Django, Celery or a library through the standard
`logging` module, gets the request's fields: `request_id` (an incoming X-Request-ID when it is sane, else a new
one), and whatever the code learned on the way (`organization_id`, `key_prefix`, `gateway`, `model`,
`completion_id`). The request's fields live in one mutable dict held by a context variable: Django runs views
in copies of the context (tasks, sync_to_async threads), and a dict shared by reference is how a field learned
deep inside a view reaches the access line written by the ASGI middleware after it.

Never logged: keys, secrets, message content. `annotate()` takes only the names in `REQUEST_FIELDS`, and a last
processor drops any event field whose name says it may hold a secret or content, whoever logged it.

Use: `log.annotate(organization_id=...)` where a field becomes known; `structlog.get_logger(__name__)` or plain
`logging.getLogger(__name__)` to write lines. Celery tasks inherit the request id of the request that queued them
(a message header, see `connect_celery`).
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

REQUEST_FIELDS = frozenset(
    {"request_id", "organization_id", "key_prefix", "gateway", "model", "completion_id", "user_id", "task"}
)
# Event fields that could carry a secret or a tenant's content are dropped, whoever logged them.
_UNSAFE_NAMES = re.compile(
    r"(password|passwd|secret|authorization|cookie|api_?key|raw_?key)"
    r"|^(token|key|messages|content|prompt|body|headers|session|query|term|request|scope|color_message)$",
    re.I,
)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
CELERY_HEADER = "aivax_request_id"

_current: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("aivax_request", default=None)


def sane_request_id(value: str | bytes | None) -> str | None:
    """An incoming request id we may echo and log: short, printable, no spaces or control characters."""
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not value or not _SANE_ID.match(value):
        return None
    return value


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def request_scope(request_id: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Bind a request (or a task) to the current context for the duration of the block."""
    state: dict[str, Any] = {"request_id": request_id}
    state.update({k: v for k, v in fields.items() if k in REQUEST_FIELDS and v is not None})
    token = _current.set(state)
    try:
        yield state
    finally:
        _current.reset(token)


def annotate(**fields: Any) -> None:
    """Record what this request turned out to be about (organization, gateway, ...); a no-op outside one."""
    state = _current.get()
    if state is None:
        return
    for name, value in fields.items():
        if name in REQUEST_FIELDS and value is not None:
            state[name] = value if isinstance(value, int | float | bool) else str(value)


def current() -> dict[str, Any]:
    """The current request's fields (a copy); empty outside a request."""
    state = _current.get()
    return dict(state) if state else {}


def current_request_id() -> str | None:
    state = _current.get()
    return state.get("request_id") if state else None


# structlog processors -------------------------------------------------------------------------------------------


def _add_request(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    state = _current.get()
    if state:
        for name, value in state.items():
            event.setdefault(name, value)
    return event


def _drop_unsafe(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for name in [n for n in event if n != "event" and _UNSAFE_NAMES.search(n)]:
        event.pop(name, None)
    return event


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        _add_request,
        _drop_unsafe,
    ]


_configured = False


def configure() -> None:
    """Route structlog through the standard logging module (one set of handlers, set in settings.LOGGING)."""
    global _configured
    if _configured:
        return
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    _configured = True


def formatter(renderer: str = "json") -> logging.Formatter:
    """settings.LOGGING's formatter factory: `{"()": "aivax.log.formatter", "renderer": "json"|"console"}`."""
    configure()
    final: Any = (
        structlog.processors.JSONRenderer()
        if renderer == "json"
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    tail: list[Any] = [structlog.processors.format_exc_info] if renderer == "json" else []
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, final],
    )


def logging_config(*, renderer: str, level: str) -> dict[str, Any]:
    """The LOGGING dict of every settings flavour: everything through one structlog formatter on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": "aivax.log.formatter", "renderer": renderer}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            "httpx2": {"level": "WARNING"},
            "httpcore2": {"level": "WARNING"},
            # uvicorn's own lines (start, stop, errors) in the same format, once the app is loaded.
            "uvicorn": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"level": "WARNING"},  # our own access line replaces uvicorn's
        },
    }


# Celery: the request id travels in a message header ---------------------------------------------------------------

_task_tokens: dict[str, contextvars.Token[dict[str, Any] | None]] = {}


def _on_publish(headers: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    request_id = current_request_id()
    if headers is not None and request_id:
        headers[CELERY_HEADER] = request_id


def _on_prerun(task_id: str | None = None, task: Any = None, **_kwargs: Any) -> None:
    incoming = getattr(getattr(task, "request", None), CELERY_HEADER, None)
    headers = getattr(getattr(task, "request", None), "headers", None) or {}
    request_id = sane_request_id(incoming or headers.get(CELERY_HEADER)) or new_request_id()
    state = {"request_id": request_id, "task": getattr(task, "name", None)}
    if task_id:
        _task_tokens[task_id] = _current.set({k: v for k, v in state.items() if v is not None})


def _on_postrun(task_id: str | None = None, **_kwargs: Any) -> None:
    token = _task_tokens.pop(task_id or "", None)
    if token is not None:
        try:
            _current.reset(token)
        except ValueError:  # reset from another context (should not happen in prefork); clear instead
            _current.set(None)


def connect_celery() -> None:
    from celery.signals import before_task_publish, task_postrun, task_prerun

    before_task_publish.connect(_on_publish, dispatch_uid="aivax.log.publish", weak=False)
    task_prerun.connect(_on_prerun, dispatch_uid="aivax.log.prerun", weak=False)
    task_postrun.connect(_on_postrun, dispatch_uid="aivax.log.postrun", weak=False)
