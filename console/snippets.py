"""Copyable client snippets for a gateway. Never a real key: `<your API key>` stands in for it."""

from __future__ import annotations

import json

KEY_PLACEHOLDER = "<your API key>"


def curl(*, base_url: str, model: str) -> str:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello!"}]})
    return (
        f"curl {base_url}/chat/completions \\\n"
        f'  -H "Authorization: Bearer {KEY_PLACEHOLDER}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d '{body}'"
    )


def python_openai(*, base_url: str, model: str) -> str:
    return (
        "from openai import OpenAI\n"
        "\n"
        f'client = OpenAI(base_url="{base_url}", api_key="{KEY_PLACEHOLDER}")\n'
        "\n"
        "stream = client.chat.completions.create(\n"
        f'    model="{model}",\n'
        '    messages=[{"role": "user", "content": "Hello!"}],\n'
        "    stream=True,\n"
        ")\n"
        "for chunk in stream:\n"
        "    if chunk.choices:\n"
        '        print(chunk.choices[0].delta.content or "", end="", flush=True)\n'
    )
