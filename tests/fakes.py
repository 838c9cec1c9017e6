"""Real local servers that stand in for outside services in tests.

`FakeHttp` is an HTTP server on 127.0.0.1 with a route table; it records every
request, so tests can count what the client really sent.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    declared_length: int | None = None  # a Content-Length that lies (a body that breaks off)
    drip_s: float = 0.0  # send the body one byte at a time, this far apart


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any = None
    method: str = "GET"
    at: float = 0.0  # time.monotonic() when the request arrived
    target: str = ""  # the request line's target as sent: path and encoded query


Handler = Callable[[Seen], Reply]


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a burst of connections (crew workers, retries) is queued, not refused


class FakeHttp:
    def __init__(self) -> None:
        self.routes: dict[str, Handler | list[Reply] | Reply] = {}
        self.fallback: Handler | None = None  # answers every path the route table lacks
        self.seen: list[Seen] = []
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._send(fake._record("GET", self.path, self.headers.items(), None))

            def do_POST(self) -> None:
                self._send(fake._record(self.command, self.path, self.headers.items(), self._body()))

            do_PATCH = do_POST

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if "json" not in (self.headers.get("Content-Type") or "json"):
                    return {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                try:
                    return json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    return raw

            def _send(self, reply: Reply) -> None:
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                body = reply.body.encode() if isinstance(reply.body, str) else reply.body
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(reply.declared_length or len(body)))
                    self.end_headers()
                    if not reply.drip_s:
                        self.wfile.write(body)
                    for byte in body if reply.drip_s else b"":
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(reply.drip_s)
                    if reply.declared_length:
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _record(self, method: str, target: str, headers: Any, body: Any) -> Reply:
        parts = urlsplit(target)
        seen = Seen(
            parts.path,
            parse_qs(parts.query),
            {k.lower(): v for k, v in headers},
            body,
            method,
            time.monotonic(),
            target,
        )
        self.seen.append(seen)
        return self._reply(seen)

    def _reply(self, seen: Seen) -> Reply:
        route = self.routes.get(seen.path)
        if route is None and self.fallback is not None:
            return self.fallback(seen)
        if route is None:
            return Reply(404, "not found", {"Content-Type": "text/plain"})
        if isinstance(route, Reply):
            return route
        if isinstance(route, list):
            return route.pop(0) if len(route) > 1 else route[0]
        return route(seen)

    def hits(self, path: str) -> int:
        return sum(1 for s in self.seen if s.path == path)

    @contextmanager
    def running(self) -> Iterator[FakeHttp]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


def html(body: str, status: int = 200, **headers: str) -> Reply:
    return Reply(status, body, {"Content-Type": "text/html; charset=utf-8", **headers})


def json_reply(data: Any, status: int = 200, **headers: str) -> Reply:
    return Reply(status, json.dumps(data), {"Content-Type": "application/json", **headers})


class ScriptedLlm:
    """An OpenAI-compatible chat-completions endpoint whose answers a test scripts.

    The researcher's request carries `tools`; it gets a company profile. The analyst's
    request carries the leads as JSON inside <untrusted> tags; `judge(lead, prompt)`
    returns each lead's judgement, or `raw` replaces the whole answer.
    """

    def __init__(self, fake: FakeHttp) -> None:
        self.fake = fake
        self.judge: Callable[[dict[str, Any], str], dict[str, Any]] = lambda lead, prompt: {
            "score": min(100, int(lead.get("rules_score") or 50) + 10),
            "tier": "B",
            "confidence": 0.8,
            "summary": "Fits the ICP on industry and size.",
            "evidence": [{"criterion": "industry", "finding": "B2B software", "source": "crm"}],
        }
        self.raw: str | None = None
        self.delay_s = 0.0
        self.prompts: list[str] = []
        self.profile: dict[str, Any] = {
            "name": "Acme",
            "industry": "software",
            "employees": 300,
            "country": "US",
            "description": "B2B software.",
            "sources": ["crm"],
        }
        self.tool_rounds = 0  # how many company_facts calls the researcher makes before it answers
        # or: the tool calls (name, arguments) the researcher makes, one per round, before it answers
        self.tool_script: list[tuple[str, dict[str, Any]]] = []
        self.tool_answers: list[str] = []  # what the tools answered, as the LLM received it
        self.profiles: dict[str, dict[str, Any]] = {}  # the researcher's answer per domain (else `profile`)
        fake.routes["/v1/chat/completions"] = self._answer

    @property
    def calls(self) -> int:
        return sum(1 for s in self.fake.seen if s.path == "/v1/chat/completions")

    def _answer(self, seen: Seen) -> Reply:
        body = seen.body or {}
        prompt = "\n".join(str(m.get("content")) for m in body.get("messages", []))
        self.prompts.append(prompt)
        message: dict[str, Any] = {"role": "assistant"}
        tool_results = sum(1 for m in body.get("messages", []) if m.get("role") == "tool")
        if body.get("tools") and tool_results:
            last = [m for m in body.get("messages", []) if m.get("role") == "tool"][-1]
            self.tool_answers.append(str(last.get("content")))
        script = self.tool_script
        if body.get("tools") and tool_results < (len(script) or self.tool_rounds):
            name, arguments = script[tool_results] if script else ("company_facts", {"domain": "acme.io"})
            domain = _researched(prompt)
            arguments = {k: str(v).replace("{domain}", domain) for k, v in arguments.items()}
            call = {"name": name, "arguments": json.dumps(arguments)}
            message |= {
                "content": None,
                "tool_calls": [{"id": f"call_{tool_results}", "type": "function", "function": call}],
            }
            content = None
        elif body.get("tools"):
            content = json.dumps(self.profiles.get(_researched(prompt), self.profile))
        elif self.raw is not None:
            content = self.raw
        else:
            leads = _lead_block(prompt)
            content = json.dumps({"leads": [{"ref": lead["ref"], **self.judge(lead, prompt)} for lead in leads]})
        reply = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {**message, "content": content},
                    "finish_reason": "tool_calls" if "tool_calls" in message else "stop",
                }
            ],
            "usage": {"prompt_tokens": 400, "completion_tokens": 60, "total_tokens": 460},
        }
        return Reply(200, json.dumps(reply), {"Content-Type": "application/json"}, delay_s=self.delay_s)


def _researched(prompt: str) -> str:
    """The domain the researcher was asked about."""
    found = re.search(r"Research the company at ([\w.-]+?)\.\s", prompt)
    return found.group(1) if found else ""


def _lead_block(prompt: str) -> list[dict[str, Any]]:
    """The leads the analyst was given: the <untrusted> block that holds a JSON list of refs."""
    for block in reversed(re.findall(r"<untrusted>\s*(.*?)\s*</untrusted>", prompt, re.DOTALL)):
        try:
            data = json.loads(block)
        except json.JSONDecodeError:
            continue
        if isinstance(data, list):
            return data
    return []
