"""The one error a server-side tool raises: its message is what the model reads (never a secret or a trace)."""


class ToolError(Exception):
    pass
