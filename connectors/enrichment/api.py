"""What the paid enrichment APIs share: an API-key session, usage, and errors turned into lookups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from connectors.enrichment.base import Lookup
from connectors.errors import FatalError, RetriableError
from connectors.http import ProviderSkipped, ServiceClient, ServicePolicy


@dataclass
class ApiProvider:
    """Subclasses set `name` and `fields` and turn a response into a Lookup."""

    base_url: str
    api_key: str
    policy: ServicePolicy
    name = "api"

    def __post_init__(self) -> None:
        headers = {"X-Api-Key": self.api_key, "Accept": "application/json"}
        self.client = ServiceClient(self.name, self.policy, headers)

    def usage(self) -> tuple[int, float]:
        return self.client.stats.calls, self.client.stats.cost

    def off_reason(self) -> str | None:
        return self.client.stats.open_reason

    def _get(self, path: str, params: dict[str, Any]) -> requests.Response | Lookup:
        """The response, or the Lookup that says why there is none (skipped, error)."""
        try:
            with self.client.timed():
                return self.client.get(f"{self.base_url.rstrip('/')}{path}", params=params)
        except ProviderSkipped as exc:
            return Lookup("skipped", reason=str(exc))
        except (RetriableError, FatalError) as exc:
            return Lookup("error", reason=str(exc))
