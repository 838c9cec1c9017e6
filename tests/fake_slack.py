"""A fake Slack incoming-webhook service, as Slack documents it.

Each webhook is a path `/services/T…/B…/<secret>` that posts to one channel. A POST with a
JSON body that has `text` (or `blocks`) answers 200 `ok` (text/plain); otherwise 400
`invalid_payload` (not JSON), `no_text` or
`invalid_blocks` (a blank or over-long section). A webhook can be set to answer as a removed
(404 `no_service`), revoked (403 `invalid_token`) or archived-channel (410
`channel_is_archived`) one, and a test can script the next answers (429 with Retry-After,
500 `rollup_error`).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from tests.fakes import FakeHttp, Reply, Seen

_ids = itertools.count(1)


def _text(status: int, body: str, **headers: str) -> Reply:
    return Reply(status, body, {"Content-Type": "text/html", **headers})


@dataclass
class Webhook:
    path: str
    channel: str
    gone: Reply | None = None  # answer for good (404 / 403 / 410)
    script: list[Reply] = field(default_factory=list)  # the next answers, before normal service
    messages: list[dict[str, Any]] = field(default_factory=list)
    hits: int = 0


class FakeSlack:
    def __init__(self, fake: FakeHttp) -> None:
        self.fake = fake
        self.hooks: dict[str, Webhook] = {}
        fake.fallback = self._handle

    def webhook(self, channel: str) -> Webhook:
        n = next(_ids)
        hook = Webhook(f"/services/T0000TEAM/B{n:07d}/secret{n:016d}", channel)
        self.hooks[hook.path] = hook
        return hook

    def url(self, hook: Webhook) -> str:
        return self.fake.url + hook.path

    def texts(self, hook: Webhook) -> list[str]:
        return [m["text"] for m in hook.messages]

    @staticmethod
    def archived() -> Reply:
        return _text(410, "channel_is_archived")

    @staticmethod
    def removed() -> Reply:
        return _text(404, "no_service")

    @staticmethod
    def rate_limited(retry_after: int = 1) -> Reply:
        return _text(429, "rate_limited", **{"Retry-After": str(retry_after)})

    @staticmethod
    def server_error() -> Reply:
        return _text(500, "rollup_error")

    def _handle(self, seen: Seen) -> Reply:
        hook = self.hooks.get(seen.path)
        if hook is None or seen.method != "POST":
            return _text(404, "no_service")
        hook.hits += 1
        if hook.gone is not None:
            return hook.gone
        if hook.script:
            return hook.script.pop(0)
        if not isinstance(seen.body, dict) or "json" not in seen.headers.get("content-type", ""):
            return _text(400, "invalid_payload")
        text, blocks = seen.body.get("text"), seen.body.get("blocks")
        if not (isinstance(text, str) and text.strip()) and not blocks:
            return _text(400, "no_text")
        if blocks is not None and not _valid_blocks(blocks):
            return _text(400, "invalid_blocks")
        hook.messages.append(json.loads(json.dumps(seen.body)))
        return Reply(200, "ok", {"Content-Type": "text/plain"})


def _valid_blocks(blocks: Any) -> bool:
    """At most 50 blocks; a section's text is 1 to 3,000 characters and not blank."""
    if not isinstance(blocks, list) or len(blocks) > 50:
        return False
    for block in blocks:
        text = (block.get("text") or {}).get("text", "") if block.get("type") == "section" else "x"
        if not isinstance(text, str) or not text.strip() or len(text) > 3000:
            return False
    return True
