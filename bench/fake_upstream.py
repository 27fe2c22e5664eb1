"""An instant OpenAI-compatible upstream for gateway benchmarks (loopback only).

    .venv/bin/python bench/fake_upstream.py --port 18300 [--delay-ms 200] [--chunk-interval-ms 10]

`POST /v1/chat/completions` answers a fixed completion after `--delay-ms` (0 = at once), as JSON
or, with `"stream": true`, as server-sent events: `--chunks` content chunks `--chunk-interval-ms`
apart, then a `usage` chunk when the client asked for `stream_options.include_usage` (as OpenAI
does), then `[DONE]`. `GET /healthz` answers 200. aiohttp on uvloop when installed, so that the
upstream costs far less per call than any gateway in front of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

from aiohttp import web

CONTENT = "spam"
PROMPT_TOKENS = 24
COMPLETION_TOKENS = 2


def _usage() -> dict[str, int]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    }


def completion(model: str) -> bytes:
    return json.dumps(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": CONTENT, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(),
        },
        separators=(",", ":"),
    ).encode()


def chunk(
    completion_id: str, model: str, created: int, choices: list[dict[str, Any]], **extra: Any
) -> bytes:
    body = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_bench",
        "choices": choices,
        **extra,
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


class FakeUpstream:
    def __init__(self, *, delay: float, chunks: int, chunk_interval: float) -> None:
        self.delay = delay
        self.chunks = chunks
        self.chunk_interval = chunk_interval

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.json_response({"error": {"message": "invalid JSON"}}, status=400)
        model = str(body.get("model") or "fake")
        if self.delay:
            await asyncio.sleep(self.delay)
        if not body.get("stream"):
            return web.Response(body=completion(model), content_type="application/json")
        return await self._stream(request, model, body)

    async def _stream(
        self, request: web.Request, model: str, body: dict[str, Any]
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        await response.write(chunk(completion_id, model, created, [first]))
        for index in range(self.chunks):
            if self.chunk_interval:
                await asyncio.sleep(self.chunk_interval)
            # The pieces join to CONTENT so a success condition on the text still holds.
            piece = CONTENT if index == 0 else ""
            delta = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
            await response.write(chunk(completion_id, model, created, [delta]))
        last = {"index": 0, "delta": {}, "finish_reason": "stop"}
        await response.write(chunk(completion_id, model, created, [last]))
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(chunk(completion_id, model, created, [], usage=_usage()))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def build_app(*, delay: float, chunks: int, chunk_interval: float) -> web.Application:
    upstream = FakeUpstream(delay=delay, chunks=chunks, chunk_interval=chunk_interval)
    app = web.Application(client_max_size=2_000_000)
    app.router.add_post("/v1/chat/completions", upstream.chat_completions)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18300)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="before every answer")
    parser.add_argument("--chunks", type=int, default=8, help="content chunks of a stream")
    parser.add_argument("--chunk-interval-ms", type=float, default=0.0, help="between chunks")
    args = parser.parse_args()
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # plain asyncio still works, only slower
        loop = asyncio.new_event_loop()
    app = build_app(
        delay=args.delay_ms / 1000,
        chunks=args.chunks,
        chunk_interval=args.chunk_interval_ms / 1000,
    )
    # backlog: hundreds of connections may arrive at once from the load generator.
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        backlog=4096,
        loop=loop,
    )


if __name__ == "__main__":
    main()
