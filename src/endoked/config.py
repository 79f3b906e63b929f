"""Typed run configuration: one pydantic model per stage, composed into :class:`RunConfig`.

Precedence, lowest first: model defaults < named profile (``profiles/<name>.yaml``) < user YAML file <
CLI overrides (``section.key=value``, the value parsed as YAML). The resolved config is written to the
run folder as ``config.yaml``.
"""

from __future__ import annotations

import copy
import reprlib
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from endoked.biopsy.config import BiopsyConfig
from endoked.cam.config import CamConfig
from endoked.errors import ConfigError
from endoked.eval.config import EvalConfig
from endoked.executors import ExecutorConfig
from endoked.extract.config import ExtractConfig
from endoked.ingest.config import IngestConfig
from endoked.mil.config import MilConfig
from endoked.prompt_seg.config import PromptSegConfig
from endoked.seg.config import RENAMED as SEG_RENAMED
from endoked.seg.config import SegConfig
from endoked.synth.config import SynthConfig

PROFILE_NAMES = ("cpu-small", "gpu-paper")

# Keys that were renamed or moved into a nested section: old dotted key -> new dotted key. A config (profile,
# file, --set) that still uses an old key fails with a message naming the new one (never silently ignored).
RENAMED_KEYS: dict[str, str] = {
    "num_workers": "workers",
    "cam.input_size": "cam.image_size",
    "cam.backbone_weights": "cam.weights",
    **{f"seg.{old}": f"seg.{new}" for old, new in SEG_RENAMED.items()},
    **{
        f"cam.{k}": f"cam.boxes.{k}"
        for k in (
            "threshold",
            "min_area",
            "max_area",
            "drop_border",
            "border_margin",
            "max_components",
            "min_component_area",
            "multi_box",
        )
    },
}


def renamed_keys(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """``(old, new)`` for every key of ``data`` (nested mapping) that :data:`RENAMED_KEYS` lists."""
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if dotted in RENAMED_KEYS:
            out.append((dotted, RENAMED_KEYS[dotted]))
        elif isinstance(value, Mapping):
            out.extend(renamed_keys(value, dotted + "."))
    return out


def check_renamed(data: Mapping[str, Any], source: str) -> None:
    """Raise :class:`ConfigError` when ``data`` (from ``source``) uses a renamed key, naming the new key."""
    found = renamed_keys(data)
    if found:
        lines = "\n".join(f"  {old} is now {new}" for old, new in found)
        raise ConfigError(f"{source} uses renamed config keys:\n{lines}")


class RunConfig(BaseModel):
    """Everything a run needs. Stage sections are documented on their own models."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    profile: str = Field("default", description="Name of the profile the config was built from.")
    seed: int = Field(0, description="Global seed; every stage derives its own generators from it.")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="Compute device; 'auto' picks cuda > mps > cpu."
    )
    workers: int = Field(2, ge=0, description="Worker processes/threads for parallel I/O (data loading).")
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    synth: SynthConfig = Field(default_factory=SynthConfig)
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    mil: MilConfig = Field(default_factory=MilConfig)
    cam: CamConfig = Field(default_factory=CamConfig)
    prompt_seg: PromptSegConfig = Field(default_factory=PromptSegConfig)
    seg: SegConfig = Field(default_factory=SegConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    biopsy: BiopsyConfig = Field(default_factory=BiopsyConfig)

    def section(self, name: str) -> BaseModel:
        """Return a stage's config section by name (``prompt-seg`` and ``prompt_seg`` both work)."""
        key = name.replace("-", "_")
        value = getattr(self, key, None)
        if not isinstance(value, BaseModel):
            raise ConfigError(f"no config section {name!r}")
        return value

    def to_yaml(self) -> str:
        """The config as YAML, every field spelled out."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``top`` over ``base`` (mappings merge, everything else is replaced)."""
    out = copy.deepcopy(dict(base))
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_profile(name: str) -> dict[str, Any]:
    """Read a named profile shipped with the package."""
    if name not in PROFILE_NAMES:
        raise ConfigError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILE_NAMES)}")
    text = resources.files("endoked.profiles").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    data["profile"] = name
    return dict(data)


MAX_CONFIG_BYTES = 10_000_000
MAX_CONFIG_VALUES = 100_000


def _expanded_size(obj: Any, limit: int) -> int:
    """How many values ``obj`` holds once YAML aliases are expanded (shared sub-trees counted every time they
    appear), computed without expanding them; stops counting past ``limit``."""
    memo: dict[int, int] = {}

    def size(node: Any, depth: int) -> int:
        if not isinstance(node, dict | list) or depth > 200:
            return 1
        key = id(node)
        if key not in memo:
            memo[key] = 0  # a cycle (possible with aliases of an enclosing node) counts once
            items = list(node.keys()) + list(node.values()) if isinstance(node, dict) else node
            total = 1
            for item in items:
                total += size(item, depth + 1)
                if total > limit:
                    break
            memo[key] = total
        return memo[key]

    return size(obj, 0)


def load_yaml_file(path: str | Path) -> dict[str, Any]:
    """Read a user YAML config file; errors name the file.

    The file is read through :func:`endoked.safe_read.read_regular_file` (a regular file of at most
    :data:`MAX_CONFIG_BYTES`), must be UTF-8, and may not expand (through YAML aliases) to more than
    :data:`MAX_CONFIG_VALUES` values: an "alias bomb" is refused before anything walks the expanded tree.
    """
    from endoked.safe_read import UnsafeFileError, read_regular_file

    path = Path(path)
    try:
        raw = read_regular_file(path, max_bytes=MAX_CONFIG_BYTES, what="config file")
    except UnsafeFileError as exc:
        if exc.code == "missing_file":
            raise ConfigError(f"config file not found: {path}") from None
        raise ConfigError(str(exc)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"config file {path} is nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level, got {type(data).__name__}")
    if _expanded_size(data, MAX_CONFIG_VALUES) > MAX_CONFIG_VALUES:
        raise ConfigError(
            f"config file {path} expands to more than {MAX_CONFIG_VALUES} values through YAML "
            "aliases (an alias bomb?); write the values out"
        )
    return data


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """Turn ``["mil.epochs=3", "seed=1"]`` into a nested dict; values are parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        dotted, raw = item.split("=", 1)
        keys = [k.strip().replace("-", "_") for k in dotted.split(".")]
        if not all(keys):
            raise ConfigError(f"override {item!r} has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: cannot parse value: {exc}") from exc
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with another override")
        node[keys[-1]] = value
    return out


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 3, 6, 6, 6
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 120, 120, 60


def _short_repr(value: Any) -> str:
    """A bounded repr (at most 200 characters): a value shared many times through YAML aliases is never
    expanded in a message."""
    text = _REPR.repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _format_validation_error(exc: ValidationError, sources: str) -> str:
    lines = [f"invalid configuration (from {sources}):"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        given = err.get("input")
        given_txt = f" (given: {_short_repr(given)})" if not isinstance(given, dict) else ""
        lines.append(f"  {loc}: {err['msg']}{given_txt}")
    return "\n".join(lines)


def resolve_config(
    profile: str | None = None,
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> RunConfig:
    """Build the run config: defaults < profile < YAML file < ``extra`` (CLI flags) < overrides."""
    data: dict[str, Any] = {}
    sources = ["defaults"]
    if profile:
        profile_data = load_profile(profile)
        check_renamed(profile_data, f"profile {profile}")
        data = deep_merge(data, profile_data)
        sources.append(f"profile {profile}")
    if config_file:
        file_data = load_yaml_file(config_file)
        check_renamed(file_data, f"config file {config_file}")
        data = deep_merge(data, file_data)
        sources.append(f"file {config_file}")
    if extra:
        check_renamed(extra, "command-line flags")
        data = deep_merge(data, extra)
        sources.append("command-line flags")
    if overrides:
        override_data = parse_overrides(overrides)
        check_renamed(override_data, "--set")
        data = deep_merge(data, override_data)
        sources.append("--set overrides")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, " < ".join(sources))) from exc
