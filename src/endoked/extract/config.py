"""Configuration of the extract stage (report text -> structured polyp labels)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LLMConfig(BaseModel):
    """Settings of the ``llm`` extractor: an OpenAI-compatible chat server or an embedded GGUF model."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    engine: Literal["server", "embedded"] = Field(
        "server",
        description="'server': any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server); "
        "'embedded': a local GGUF model run in-process with xllamacpp.",
    )
    url: str = Field("http://127.0.0.1:8000/v1", description="Base URL of the OpenAI-compatible endpoint.")
    model: str = Field("local-model", description="Model name sent to the endpoint (part of the cache key).")
    api_key_env: str = Field(
        "ENDOKED_LLM_API_KEY", description="Environment variable holding the API key (local servers need none)."
    )
    allow_remote: bool = Field(
        False, description="Allow endpoints outside loopback/private networks. Report text is de-identified either way."
    )
    model_path: str | None = Field(None, description="GGUF model file for engine='embedded'.")
    n_ctx: int = Field(4096, ge=512, description="Context length of the embedded model.")
    n_gpu_layers: int = Field(0, ge=-1, description="Layers offloaded to a GPU by the embedded engine (-1 all).")
    response_format: Literal["json_schema", "json_object"] = Field(
        "json_schema",
        description="Constrained decoding mode tried first; 'json_schema' falls back to "
        "'json_object' (plus validation) when the server rejects it.",
    )
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature (0 = deterministic).")
    max_tokens: int = Field(800, ge=64, description="Upper bound on generated tokens per report.")
    timeout_s: float = Field(60.0, gt=0, description="Timeout of one request in seconds.")
    max_retries: int = Field(3, ge=0, description="Retries after a timeout, connection error, 429 or 5xx.")
    backoff_s: float = Field(1.0, ge=0, description="First retry delay; doubles on each further retry.")
    backoff_max_s: float = Field(30.0, ge=0, description="Upper bound of one retry delay.")
    repair_retries: int = Field(
        1, ge=0, description="Re-asks with the validation errors when the answer breaks the schema."
    )
    concurrency: int = Field(4, ge=1, description="Requests in flight at once.")
    cache_dir: str | None = Field(
        None,
        description="On-disk answer cache folder (keyed by text hash, model and prompt version); None disables it.",
    )
    deidentify: bool = Field(
        True,
        description="Replace names, dates, phone numbers, IDs before sending. "
        "Only loopback endpoints may switch it off.",
    )


class ExtractConfig(BaseModel):
    """Tunables of the extract stage."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    backend: Literal["rules", "llm", "ensemble"] = Field(
        "rules",
        description="Extractor: 'rules' (offline, fast), 'llm' or 'ensemble' (both; disagreement on "
        "polyp gives 'uncertain').",
    )
    max_chars: int = Field(100_000, ge=100, description="Reports longer than this become per-row errors.")
    max_binary_fraction: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Reports whose share of control/replacement characters exceeds this are rejected as binary junk.",
    )
    chunk_size: int = Field(2000, ge=1, description="Reports per finished chunk file (resume granularity).")
    ensemble_on_llm_error: Literal["rules", "error"] = Field(
        "rules",
        description="Ensemble when the LLM fails on a row: keep the rules answer (noted in the "
        "evidence) or make the row an error.",
    )
    llm: LLMConfig = Field(default_factory=LLMConfig, description="LLM backend settings.")
