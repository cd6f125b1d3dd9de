"""Server-side tools on gateways: functions the model calls and the gateway runs during an answer.

Two kinds a tenant registers (``models.py``): HTTP functions (a signed POST to the tenant's URL, ``http.py``) and
the tools of MCP servers over streamable HTTP (the official ``mcp`` SDK, ``mcp.py``). Knowledge search
(QueryFunction) is one more server-side tool. ``runtime.py`` runs a round of calls (in parallel, each with its own
timeout) and turns every outcome, errors included, into a tool message for the model and a ``runned_functions``
entry for the caller.
"""
