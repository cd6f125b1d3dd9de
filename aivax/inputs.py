"""Input hygiene shared by every /api/v1 body and query: the one home of the checks that no single field's
validation can make, because they apply to any string or any nesting, wherever it appears.

- No NUL character in any string (keys included): PostgreSQL text and jsonb cannot store one, so it would
  otherwise surface as a database error (a 500) far from the parameter that carried it.
- Nesting at most MAX_JSON_DEPTH levels: deep structures inside `tools`, `response_format` or metadata are
  otherwise copied, dumped and stored recursively (RecursionError) and cost CPU out of proportion to their size.

The walk is iterative (no recursion, whatever the input) and linear in the size of the parsed value.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, StringConstraints

from aivax.errors import InvalidRequest

MAX_JSON_DEPTH = 32


# pydantic names the branch of a union or the validator it tried ("str", "list[dict[str,any]]",
# "function-after[check_url(), constrained-str]"): not parameter names, so they are left out of `param`.
_UNION_LABEL = re.compile(r"^(str|int|float|bool|none|[a-z-]+\[.*\])$")


def _path(parts: tuple[Any, ...] | list[Any]) -> str:
    """A parameter path as OpenAI writes it: `messages[0].content`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _UNION_LABEL.match(str(part)):
            out += ("." if out else "") + str(part)
    return out


def param_name(loc: tuple[Any, ...] | list[Any], *, skip: tuple[str, ...] = ()) -> str | None:
    """The parameter a pydantic error location points at, without the sources in `skip` ("body", "query")."""
    return _path([part for part in loc if part not in skip]) or None


def check_value(value: Any, *, max_depth: int = MAX_JSON_DEPTH, root: tuple[Any, ...] = ()) -> None:
    """Raise InvalidRequest (naming the parameter) for a NUL character or nesting deeper than `max_depth`."""
    stack: list[tuple[Any, tuple[Any, ...], int]] = [(value, root, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise _nul(path)
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                param = _path(path[:1]) or None  # the top-level parameter; the full path could be very long
                raise InvalidRequest(
                    f"Invalid value for '{param or 'body'}': JSON nested deeper than {max_depth} levels.",
                    param=param,
                    code="invalid_value",
                )
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str) and "\x00" in key:
                        raise _nul(path)
                    stack.append((child, (*path, key), depth + 1))
            else:
                stack.extend((child, (*path, index), depth + 1) for index, child in enumerate(item))


def _nul(path: tuple[Any, ...]) -> InvalidRequest:
    param = _path(path) or None
    return InvalidRequest(
        f"Invalid value for '{param or 'body'}': text may not contain NUL (\\u0000) characters.",
        param=param,
        code="invalid_value",
    )


def loads(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON body and check it; an unparsable body is a 400 `invalid_json`."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("We could not parse the JSON body of your request.", code="invalid_json") from exc
    check_value(data, max_depth=max_depth)
    return data


def check_url(value: str) -> str:
    """A well-formed http(s) URL (`http://[::1` or a port above 65535 are not): for pydantic validators.

    Only the syntax; which addresses may be reached is the outbound policy's decision (aivax/outbound.py)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError past 65535 or for a non-numeric port
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if port == 0:
        raise ValueError("port 0 is not a valid port")
    return value


# URLField columns hold 200 characters.
HttpUrlText = Annotated[str, StringConstraints(max_length=200), AfterValidator(check_url)]
