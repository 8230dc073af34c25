"""Writes tests/schemas/pydantic.json: the JSON Schemas that pydantic emits
for the field types and constraints tool authors use, as the corpus of the
mock's schema property test (src/mock/schema/tests.rs, `corpus_inputs_validate`),
and the same schemas as the Anthropic SDK sends them for structured output
(`transform_schema`: unsupported keywords moved into descriptions), which
the mock's input must still satisfy in their original form
(`validate_against`).

    .venv-test/bin/python tests/clients/python/export_schemas.py

Re-run it after changing the models or the pinned pydantic; commit the output.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import pathlib
import uuid
from typing import Annotated, Literal, Optional, Union

import pydantic
from anthropic.lib._parse._transform import transform_schema
from pydantic import BaseModel, Field, conlist


class Unit(str, enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Weather(BaseModel):
    """pydantic's Field(gt=0, lt=1): the exclusive bounds instructor users hit."""

    city: str
    days: int = Field(ge=1, le=7)
    confidence: float = Field(gt=0, lt=1)
    unit: Unit = Unit.CELSIUS


class Address(BaseModel):
    street: str = Field(min_length=3, max_length=40)
    zip_code: str = Field(pattern=r"^[0-9]{5}$")
    country: Literal["US", "CA", "MX"]


class Person(BaseModel):
    name: str
    email: str = Field(pattern=r"^[a-z]{3,8}@[a-z]{3,8}\.(com|org)$")
    age: Optional[int] = Field(default=None, ge=0, le=150)
    home: Address
    others: list[Address] = Field(default_factory=list, max_length=3)
    id: uuid.UUID
    born: dt.date
    updated: dt.datetime


class Point(BaseModel):
    coordinates: tuple[float, float]
    labelled: tuple[str, int, bool]
    tags: set[str]
    scores: conlist(int, min_length=2, max_length=4)
    frozen: frozenset[int]


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = Field(ge=1, le=9)


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Pets(BaseModel):
    pet: Annotated[Union[Cat, Dog], Field(discriminator="kind")]
    either: Union[int, str]
    maybe: Optional[Cat] = None


class Steps(BaseModel):
    quantity: int = Field(multiple_of=5, ge=10, le=100)
    half: float = Field(multiple_of=0.5, gt=0, le=10)
    priority: Priority
    counts: dict[str, int]
    matrix: list[list[int]] = Field(min_length=1)
    flag: Literal[True]
    nothing: None = None


class TreeNode(BaseModel):
    """Recursive through a list and an Optional: ends at depth."""

    name: str
    children: list["TreeNode"] = []
    parent: Optional["TreeNode"] = None


class LinkedList(BaseModel):
    value: int
    next: Optional["LinkedList"]


class Strict(BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    code: Annotated[str, Field(pattern=r"^[A-Z]{2}-\d{4}$")]
    note: Annotated[str, Field(max_length=10)] = "n/a"


class SearchQuery(BaseModel):
    """A typical agent tool: the shape of a web or code search call."""

    query: str = Field(description="What to search for", min_length=1)
    max_results: int = Field(default=5, ge=1, le=50)
    domains: Optional[list[str]] = None
    recency_days: Annotated[int, Field(gt=0)] | None = None


MODELS = [Weather, Address, Person, Point, Pets, Steps, TreeNode, LinkedList, Strict, SearchQuery]
# What `client.messages.parse(output_format=...)` can send: models without
# tuples (the strict form has no prefixItems).
STRICT_MODELS = [Weather, Address, Strict, SearchQuery, Steps]


def main() -> None:
    corpus = [
        {"name": f"pydantic {pydantic.VERSION} {model.__name__}", "schema": model.model_json_schema()}
        for model in MODELS
    ]
    for model in STRICT_MODELS:
        schema = model.model_json_schema()
        corpus.append(
            {
                "name": f"anthropic SDK strict {model.__name__}",
                "schema": transform_schema(schema),
                "validate_against": schema,
            }
        )
    out = pathlib.Path(__file__).resolve().parents[2] / "schemas" / "pydantic.json"
    out.write_text(json.dumps(corpus, indent=1) + "\n")
    print(f"wrote {len(corpus)} schemas to {out}")


if __name__ == "__main__":
    main()
