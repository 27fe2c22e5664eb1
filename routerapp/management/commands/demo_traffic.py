from __future__ import annotations

import signal
import time
from typing import Any, cast

import httpx
import numpy as np
import openai
from django.core.management.base import BaseCommand, CommandParser
from openai.types.chat import ChatCompletionMessageParam

from routerapp import demo_data
from routerapp.models import ApiKey
from routerapp.services.access import api_key_create, api_key_revoke
from routerapp.services.demo import DEMO_GOALS

TRAFFIC_KEY_NAME = "demo-traffic"


class Command(BaseCommand):
    help = (
        "Send realistic demo prompts through the HTTP API with the openai client and report each "
        "call's true outcome through the outcome API, so the posteriors visibly move."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--requests", type=int, default=200, help="calls per goal (one round)")
        parser.add_argument("--forever", action="store_true", help="repeat rounds until stopped")
        parser.add_argument("--delay", type=float, default=0.2, help="seconds between calls")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        self.stopping = False
        signal.signal(signal.SIGTERM, self._stop)  # finish the current call, then stop
        for old in ApiKey.objects.filter(name=TRAFFIC_KEY_NAME, revoked_at=None):
            api_key_revoke(key=old)
        _, raw_key = api_key_create(name=TRAFFIC_KEY_NAME, scopes=["completions", "outcomes"])
        base = options["base_url"].rstrip("/")
        client = openai.OpenAI(base_url=f"{base}/v1", api_key=raw_key, max_retries=0, timeout=60)
        http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {raw_key}"}, timeout=30
        )
        rng = np.random.default_rng(options["seed"])
        sent = correct = errors = 0
        try:
            while not self.stopping:
                prompts = [
                    prompt
                    for goal in DEMO_GOALS
                    for prompt in demo_data.sample_prompts(goal, rng, options["requests"])
                ]
                rng.shuffle(prompts)
                for prompt in prompts:
                    if self.stopping:
                        break
                    try:
                        reply = client.chat.completions.with_raw_response.create(
                            model=f"goal/{prompt.goal}",
                            # Plain user-turn dicts; the SDK's TypedDicts are static only.
                            messages=cast("list[ChatCompletionMessageParam]", prompt.messages),
                        )
                    except openai.APIError as error:
                        errors += 1
                        self.stderr.write(f"call failed: {error}")
                        time.sleep(1.0)
                        continue
                    completion = reply.parse()
                    answer = (completion.choices[0].message.content or "").strip()
                    ok = demo_data.is_correct(prompt, answer)
                    self._report(http, reply.headers["X-Router-Request-Id"], ok)
                    sent += 1
                    correct += ok
                    if sent % 100 == 0:
                        self.stdout.write(
                            f"demo traffic: {sent} calls, {correct / sent:.0%} correct"
                        )
                    time.sleep(options["delay"])
                if not options["forever"]:
                    break
        finally:
            http.close()
        self.stdout.write(f"demo traffic: {sent} calls sent, {correct} correct, {errors} errors")

    def _report(self, http: httpx.Client, request_id: str, ok: bool) -> None:
        body = {"request_id": request_id, "outcome": "success" if ok else "failure"}
        try:
            http.post("/api/v1/outcomes", json=body).raise_for_status()
        except httpx.HTTPError as error:  # the server is restarting or going away: keep going
            self.stderr.write(f"outcome report failed: {error}")

    def _stop(self, *_: Any) -> None:
        self.stopping = True
