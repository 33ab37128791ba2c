"""The least a Python HTTP service answers with: a bare ASGI app on dataloft's own server
stack (uvicorn with uvloop and httptools, as `dataloft serve` runs), which reads the
request body and answers a fixed JSON of ten ids. No routing, no framework, no key, no
database: bench/peers.py's `floor-http` times a search-shaped POST to it beside the
others, the round trip no Python server can go under.

    .venv/bin/python bench/floor_server.py PORT
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

ANSWER = json.dumps({"id": "ds", "records": [{"id": f"rec_{i:022d}"} for i in range(10)]}
                    ).encode()
HEADERS = [(b"content-type", b"application/json"),
           (b"content-length", str(len(ANSWER)).encode())]

Message = MutableMapping[str, Any]


async def app(scope: Message, receive: Callable[[], Awaitable[Message]],
              send: Callable[[Message], Awaitable[None]]) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:  # the body, read as a server must before it answers
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
