"""The shapes of the server's JSON answers, for the OpenAPI description (/openapi.json, /docs).

They document; they do not validate: the routes return the documents the commands build (the
`alexnet predict --json` shape), so the description and the CLI's contract cannot drift apart
through a second serialiser.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class Prediction(BaseModel):
    rank: int = Field(description="1 for the most probable class")
    index: int = Field(description="the output index of the class")
    label: str = Field(description="the class name (any Unicode)")
    probability: float
    wnid: str | None = Field(None, description="the WordNet ID, where the weights know their class IDs")


class ImageAnswer(BaseModel):
    image: str = Field(description="the upload's file name (control characters dropped)")
    predictions: list[Prediction] | None = Field(None, description="top-k, absent when the image was refused")
    error: str | None = Field(None, description="why this image was refused; the others are still answered")


class CompareAnswer(BaseModel):
    image: str
    frameworks: dict[str, list[Prediction]] | None = Field(None, description="top-k per framework")
    max_probability_difference: float | None = Field(None, description="largest |p_torch - p_keras| over all classes")
    input_png: str | None = Field(None, description="the network's input (resize + crop) as a base64 PNG")
    error: str | None = None
    status: int | None = Field(None, description="the HTTP status this image alone would have had")


class Explanation(BaseModel):
    class_index: int
    label: str
    probability: float
    peak: list[int] = Field(description="row, column of the map's maximum on the network input")
    method: str
    framework: str
    png: str = Field(description="the overlay as a base64 PNG")


class WorkerState(BaseModel):
    ready: bool
    state: str = Field(description="starting, ready or restarting")
    restarts: int
    load_seconds: float
    queue: int = Field(description="images waiting for a forward pass")


class Readiness(BaseModel):
    ready: bool
    workers: dict[str, WorkerState]


class Health(BaseModel):
    status: str


class Error(BaseModel):
    detail: str


ERRORS = {status: {"model": Error} for status in (401, 413, 415, 422, 500, 503)}
