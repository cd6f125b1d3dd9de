"""The OpenAI Responses API: a second protocol face on the one chat service (gateways/chat.py).

Pure translation: request.py (validation, request -> chat request), items.py (input items <-> chat messages),
objects.py (chat completion -> Response object), stream.py (chat chunks -> semantic SSE events), wire.py (the
reverse, for upstreams that speak Responses natively). adapter.py is the one place that calls the chat service;
service.py runs a request end to end; models.py, selectors.py, services.py and tasks.py keep stored responses so
that `previous_response_id` continues a conversation; api.py holds the endpoints.
"""
