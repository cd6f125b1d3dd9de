"""The Responses API through the official OpenAI Node SDK (unchanged apart from baseURL and apiKey).

The SDK is installed from the npm registry once per checkout into .data/node-openai (git-ignored). The test is
skipped, saying why, only when node/npm are missing or the registry cannot be reached.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

# The newest release line that still runs on Node 20 (7.x needs Node 22).
NODE_OPENAI_VERSION = "6.49.0"
NODE_DIR = Path(__file__).resolve().parents[2] / ".data" / "node-openai"

SCRIPT = r"""
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: process.env.API_KEY, maxRetries: 0 });
const model = process.env.MODEL;
const out = {};

const created = await client.responses.create({ model, input: "hello node", instructions: "Be brief." });
out.text = created.output_text;
out.id = created.id;

const stream = client.responses.stream({ model, input: "one two three", previous_response_id: created.id });
const deltas = [];
stream.on("response.output_text.delta", (event) => deltas.push(event.delta));
const final = await stream.finalResponse();
out.deltas = deltas;
out.streamText = final.output_text;
out.usage = final.usage;

const tools = [{ type: "function", name: "get_weather", parameters: { type: "object" } }];
const call = await client.responses.create({ model: process.env.TOOL_MODEL, input: "weather?", tools });
const fc = call.output.find((item) => item.type === "function_call");
out.call = { name: fc.name, call_id: fc.call_id, arguments: fc.arguments };
const answer = await client.responses.create({
  model: process.env.TOOL_MODEL,
  previous_response_id: call.id,
  input: [{ type: "function_call_output", call_id: fc.call_id, output: "sunny" }],
  tools,
});
out.answer = answer.output_text;

try {
  await client.responses.retrieve("resp_does_not_exist");
} catch (error) {
  out.notFound = { status: error.status, code: error.code };
}
console.log(JSON.stringify(out));
"""


@pytest.fixture(scope="session")
def node_openai() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed")
    package = NODE_DIR / "node_modules" / "openai" / "package.json"
    if not package.exists() or json.loads(package.read_text())["version"] != NODE_OPENAI_VERSION:
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        (NODE_DIR / "package.json").write_text('{"private": true, "type": "module"}\n')
        try:
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--silent", f"openai@{NODE_OPENAI_VERSION}"],
                cwd=NODE_DIR,
                check=True,
                capture_output=True,
                timeout=180,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"could not install openai@{NODE_OPENAI_VERSION} from the npm registry: {exc}")
    return NODE_DIR


def test_node_sdk_create_stream_tools_and_continuation(
    node_openai, live_asgi, api_key, funded, gateway, stub, catalog_model
) -> None:
    from billing.models import Price
    from gateways.services import catalog_model_upsert, gateway_create

    tool_model = catalog_model_upsert(
        name=f"{catalog_model.name}-tools",
        base_url=stub.base_url,
        upstream_model=f"{catalog_model.upstream_model}-tools",
        context_window=4096,
    )
    for price in Price.objects.filter(catalog_model=catalog_model):
        Price.objects.create(catalog_model=tool_model, sku=price.sku, unit_price=price.unit_price)
    tool_gateway = gateway_create(organization=funded, name="Tools", catalog_model=tool_model)
    calls = [{"id": "call_n", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]
    stub.app.script(tool_model.upstream_model, content="", tool_calls=calls, answer_after_tool=True)

    script = node_openai / "responses_check.mjs"
    script.write_text(SCRIPT)
    env = {
        "PATH": os.environ["PATH"],
        "BASE_URL": f"{live_asgi.url}/api/v1",
        "API_KEY": api_key.raw,
        "MODEL": gateway.slug,
        "TOOL_MODEL": tool_gateway.slug,
    }
    done = subprocess.run(["node", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["text"] == "Echo: hello node" and out["id"].startswith("resp_")
    assert "".join(out["deltas"]) == out["streamText"] == "Echo: one two three"
    assert out["usage"]["output_tokens"] == 4
    assert out["call"] == {"name": "get_weather", "call_id": "call_n", "arguments": "{}"}
    assert out["answer"] == "From the tool: sunny"
    assert out["notFound"] == {"status": 404, "code": "response_not_found"}
    # previous_response_id carried the first turn into the streamed one
    sent = stub.app.requests_for(catalog_model.upstream_model)[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
