"""The ICP definition (`config/icp.yaml`), validated, with a version that is a hash of the file."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connectors.domain import Tier
from connectors.errors import ConfigError
from connectors.settings import load_yaml, validation_message


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Band(_Model):
    min: float | None = None
    max: float | None = None
    fraction: float = Field(ge=-1, le=1)


class Criterion(_Model):
    """One thing the ICP cares about: a field, its weight, and what each value earns."""

    field: str
    fallback_field: str | None = None
    weight: float = Field(gt=0)
    match: dict[str, float] | None = None
    default: float = Field(0.0, ge=-1, le=1)
    bands: list[Band] | None = None
    missing: float = Field(0.0, ge=-1, le=1)  # what no value earns (a fraction); `calibrate` learns it

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.match is None) == (self.bands is None):
            raise ValueError("give exactly one of 'match' (values) or 'bands' (numeric ranges)")
        for value, fraction in (self.match or {}).items():
            if not -1 <= fraction <= 1:
                raise ValueError(f"match value '{value}' earns {fraction}; expected a fraction from -1 to 1")
        return self


class Disqualifier(_Model):
    name: str
    field: str
    in_: list[str] = Field(alias="in")


class Icp(_Model):
    name: str = "ICP"
    tiers: dict[str, float]
    qualified_tiers: list[str] = Field(default_factory=lambda: [Tier.A.value, Tier.B.value])
    criteria: dict[str, Criterion] = Field(min_length=1)
    disqualifiers: list[Disqualifier] = Field(default_factory=list)
    # score = 100 x (sum of points - points_floor) / points_range, clipped to 0..100; by default 0 and the
    # sum of the weights. `leadq calibrate` sets both so the range its points can reach maps onto 0..100.
    points_floor: float = 0.0
    points_range: float | None = Field(None, gt=0)
    # the evidence gate: a lead whose confidence (share of the weight with a value) is below this
    # cannot reach a qualified tier; it gets the best tier that is not qualified (C by default)
    min_confidence_to_qualify: float = Field(0.3, ge=0, le=1)
    # placeholder values a form or a CRM puts where nobody answered ("Select", "N/A"): missing, not a value
    missing_values: list[str] = Field(default_factory=list)
    # each tier's conversion rate on held-out leads, as `leadq calibrate` measured it: the tier read as a
    # probability (eval's Brier score and calibration error use it)
    expected_conversion: dict[str, float] | None = None
    version: str = Field("", exclude=True)

    @model_validator(mode="after")
    def _tiers_ordered(self) -> Self:
        needed = [Tier.A.value, Tier.B.value, Tier.C.value]
        missing = [t for t in needed if t not in self.tiers]
        if missing:
            raise ValueError(f"tiers needs a minimum score for {', '.join(needed)}; missing {', '.join(missing)}")
        a, b, c = (self.tiers[t] for t in needed)
        if not 100 >= a > b > c >= 0:
            raise ValueError(f"tier minimums must fall from A to C within 0..100; found A={a}, B={b}, C={c}")
        unknown = set(self.qualified_tiers) - {t.value for t in Tier}
        if unknown:
            raise ValueError(f"qualified_tiers has unknown tiers {sorted(unknown)}")
        if Tier.D.value in self.qualified_tiers:
            raise ValueError("qualified_tiers cannot include D: the evidence gate needs a tier that is not qualified")
        return self

    @property
    def gated_tier(self) -> str:
        """The tier of a lead that scored a qualified tier without enough evidence: the best unqualified one."""
        return next(t.value for t in (Tier.A, Tier.B, Tier.C, Tier.D) if t.value not in self.qualified_tiers)


def load_icp(path: Path) -> Icp:
    """Read and validate icp.yaml; its version is the first 12 hex digits of its SHA-256."""
    data = load_yaml(path)
    try:
        icp = Icp.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, path)) from exc
    icp.version = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return icp
