"""What the crew must answer: every task's output, validated with pydantic."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

FindingField = Literal["company_legal_name", "industry", "employees", "company_country", "description", "technologies"]


class Finding(BaseModel):
    """One fact the researcher read, and the page it read it on (a fact without one is dropped)."""

    field: FindingField
    value: str = Field(max_length=300)  # employees may be a range: "51-200"
    url: str | None = Field(None, max_length=500)


class CompanyProfile(BaseModel):
    """The company researcher's answer."""

    name: str | None = None
    industry: str | None = None
    employees: int | None = Field(None, ge=0)
    country: str | None = None
    description: str | None = Field(None, max_length=600)
    sources: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list, max_length=20)


class Evidence(BaseModel):
    criterion: str
    finding: str = Field(max_length=400)
    source: str = Field(max_length=200)


class LeadJudgement(BaseModel):
    ref: str
    score: int = Field(ge=0, le=100)
    tier: Literal["A", "B", "C", "D"]
    confidence: float = Field(ge=0, le=1)
    summary: str = Field(max_length=500)
    evidence: list[Evidence] = Field(default_factory=list)


class CompanyAssessment(BaseModel):
    """The ICP analyst's answer: one judgement per lead ref it was given."""

    leads: list[LeadJudgement]
