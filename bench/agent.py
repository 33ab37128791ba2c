"""Agent answer latency through the public HTTP API (Inconvo conversations).

Two fresh servers, each holding seed 000's pricing sheet as a context file of `orgId=org_456`:
- no model configured: a retrieval-only answer (one hybrid search, a table of the rows);
- a scripted OpenAI-compatible model on localhost (tests/support/chat_server.py, real HTTP):
  one tool round trip (the model asks for `search`, the agent runs it, the model answers).
Each question is asked `--runs` times on one keep-alive connection as user_123 (after two
warm-up answers); the median and p99 of the client's wall time are reported. The scripted
model answers at once, so the second figure is the agent's own overhead for one round trip
(two model calls over HTTP, one tool call, storing the turn), not a real model's latency.

    nice -n 19 .venv/bin/python bench/agent.py --runs 100
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import httpx
from common import REPO, Server, machine, median, percentile, print_table

sys.path.insert(0, str(REPO))
from tests.support.chat_server import ChatServer, tool_messages  # noqa: E402

PRICING = b"plan,price\nStarter,19\nPro,79\nEnterprise,1299\n"
QUESTION = "What's the price for the Enterprise plan?"


def scripted(body: dict[str, Any]) -> dict[str, Any]:
    results = tool_messages(body)
    if not results:
        return {"tool_calls": [{"name": "search",
                                "arguments": json.dumps({"query": "Enterprise plan price"})}]}
    rows = [r["text"] for r in results[-1]["results"] if "Enterprise" in r["text"]]
    return {"content": rows[0] if rows else "nothing found"}


def measure(server: Server, runs: int) -> list[float]:
    with httpx.Client(base_url=server.url, timeout=120,
                      headers={"Authorization": f"Bearer {server.key}"}) as http:
        r = http.post("/api/v1/datasets/context/orgId/org_456",
                      files={"file": ("company_pricing.csv", PRICING, "text/csv")})
        r.raise_for_status()
        agent = next(a["id"] for a in http.get("/api/v1/assistant/list").json()["items"]
                     if a["default"])
        base = f"/api/v1/agents/{agent}/conversations"
        conv = http.post(base, json={"userIdentifier": "user_123",
                                     "userContext": {"orgId": "org_456"}}).json()["id"]
        deadline = time.monotonic() + 120
        while "1299" not in http.post(f"{base}/{conv}/response",
                                      json={"message": QUESTION}).text:
            if time.monotonic() > deadline:
                raise RuntimeError("the pricing sheet never became searchable")
            time.sleep(0.2)
        http.post(f"{base}/{conv}/response", json={"message": QUESTION}).raise_for_status()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            r = http.post(f"{base}/{conv}/response", json={"message": QUESTION})
            times.append(time.perf_counter() - start)
            r.raise_for_status()
            assert "1299" in r.text, r.text
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    env = {"DATALOFT_SYNC_COOLDOWN_SECONDS": "0"}
    rows = []
    with ChatServer() as chat:
        chat.script = scripted
        for label, extra in (("retrieval only (no model)", {}),
                             ("one tool round trip (scripted model)",
                              {"DATALOFT_LLM_URL": chat.url, "DATALOFT_LLM_MODEL": "scripted"})):
            server = Server(env_extra={**env, **extra}).start()
            try:
                times = measure(server, args.runs)
            finally:
                server.stop()
            rows.append([label, args.runs, f"{median(times) * 1000:.1f} ms",
                         f"{percentile(times, 99) * 1000:.1f} ms"])
    print_table(["answer", "runs", "median", "p99"], rows)
    print(json.dumps(machine()))


if __name__ == "__main__":
    main()
