"""Inference runtimes: a torch module's forward run by ONNX Runtime where that is faster.

On CPUs, ONNX Runtime runs the per-image models of cam (EfficientNet-Lite classifier) and prompt_seg (LiteMedSAM
encoder and mask decoder) several times faster than eager PyTorch at the same fp32 precision: it fuses
convolution + batch norm + activation, picks blocked memory layouts and avoids the per-operator overhead that
dominates small convolutions and attention blocks (docs/BENCHMARKS.md, "Speed"). Outputs agree with PyTorch
to about 1e-4 (fp32 summation order).

One concept, one name: every stage that can use it has a ``runtime`` setting (:data:`Runtime`):

- ``torch``: eager PyTorch, as before;
- ``onnxruntime``: export the module to ONNX in memory when the stage sets up (a few seconds, once per process)
  and run it with ONNX Runtime's CPU provider; fails with a clear message when ``onnxruntime`` is missing;
- ``auto`` (default): ONNX Runtime when it is installed and the model runs on the CPU, PyTorch otherwise (GPUs
  keep PyTorch with its mixed precision).

The export is traced from the module with its weights, so it runs exactly the network the stage loaded, and
nothing is downloaded. Tracing takes seconds (about 4 s for LiteMedSAM's encoder on two cores), so the exported
graph is kept in a cache folder keyed by the module's class, weights, input shapes and the torch and ONNX
Runtime versions: ``$ENDOKED_CACHE_DIR/onnx``, else ``$XDG_CACHE_HOME/endoked/onnx``, else
``~/.cache/endoked/onnx``; an unwritable cache folder only costs the export again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from endoked.config_fields import Runtime
from endoked.errors import BackendUnavailableError, ConfigError
from endoked.io import atomic_write_bytes

logger = logging.getLogger(__name__)
ArenaMode = Literal["shared", "session", "off"]  # see memory_arena_mode

__all__ = [
    "INSTALL_HINT",
    "OnnxExportError",
    "OrtModule",
    "Runtime",
    "missing_packages",
    "onnxruntime_available",
    "resolve_runtime",
]
INSTALL_HINT = "pip install onnxruntime onnx"
_OPSET = 17


def missing_packages() -> list[str]:
    """Which of ``onnxruntime`` and ``onnx`` (torch's exporter needs it) cannot be imported."""
    return [name for name in ("onnxruntime", "onnx") if importlib.util.find_spec(name) is None]


def onnxruntime_available() -> bool:
    """Whether ``onnxruntime`` and ``onnx`` can be imported."""
    return not missing_packages()


class OnnxExportError(RuntimeError):
    """A module could not be exported to ONNX (an operator the exporter does not know, say)."""


def resolve_runtime(runtime: str, device: torch.device | str) -> Literal["torch", "onnxruntime"]:
    """The runtime a model on ``device`` uses for the setting ``runtime`` (see the module docstring).

    Raises:
        BackendUnavailableError: ``onnxruntime`` asked for but not installed, or asked for on a non-CPU device.
        ValueError: an unknown setting.
    """
    dev = torch.device(device)
    if runtime == "torch":
        return "torch"
    if runtime == "onnxruntime":
        if dev.type != "cpu":
            raise BackendUnavailableError(
                f"runtime 'onnxruntime' runs on the CPU only; the model is on {dev}: use runtime 'torch' or 'auto'"
            )
        if not onnxruntime_available():
            raise BackendUnavailableError(f"runtime 'onnxruntime' needs the onnxruntime package: {INSTALL_HINT}")
        return "onnxruntime"
    if runtime == "auto":
        return "onnxruntime" if dev.type == "cpu" and onnxruntime_available() else "torch"
    raise ValueError(f"unknown runtime {runtime!r}; valid: auto, torch, onnxruntime")


class OrtModule:
    """A module's ``forward`` exported to ONNX (in memory) and run by ONNX Runtime on the CPU.

    Args:
        module: the network, in eval mode, with its weights (exported as it is now).
        example_inputs: one set of inputs to trace with (their values do not matter, their ranks do).
        input_names, output_names: names of the forward's inputs and outputs, in order.
        dynamic_axes: ``{name: {axis: label}}`` for the axes whose size may change between calls.
        threads: intra-op threads (default: ``torch.get_num_threads()``, so a stage's ``threads`` applies).
        memory_arena: "shared", "session" or "off" (see :func:`memory_arena_mode`); None:
            ``$ENDOKED_ORT_MEMORY_ARENA`` decides, ``shared`` when unset. With an arena per session the CAM maps
            (four scales, batches of views, one session per input size) grew a process from 1.9 to 4.6 GB peak
            (LiteMedSAM: 1.5 to 2.4 GB); without one, each call pays for fresh memory (cam 2.4× slower):
            docs/BENCHMARKS.md.

    Calling it with torch tensors returns a tuple of CPU float tensors, one per output name.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        example_inputs: Sequence[torch.Tensor],
        input_names: Sequence[str],
        output_names: Sequence[str],
        dynamic_axes: Mapping[str, Mapping[int, str]],
        threads: int | None = None,
        memory_arena: ArenaMode | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - resolve_runtime checks first
            raise BackendUnavailableError(
                f"runtime 'onnxruntime' needs the onnxruntime package: {INSTALL_HINT}"
            ) from exc
        self.input_names, self.output_names = list(input_names), list(output_names)
        inputs = [t.detach().cpu().clone() for t in example_inputs]
        axes = {k: dict(v) for k, v in dynamic_axes.items()}
        key = _cache_key(module, inputs, self.input_names, self.output_names, axes, ort.__version__)
        cached = cache_dir() / f"{key}.onnx"
        graph = _read_cached(cached)
        if graph is None:
            graph = _export(module, inputs, self.input_names, self.output_names, axes)
            with contextlib.suppress(OSError):
                atomic_write_bytes(cached, graph)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        mode = memory_arena_mode() if memory_arena is None else memory_arena
        opts.enable_cpu_mem_arena = mode != "off"
        if mode == "shared":
            _use_shared_arena(ort, opts)
        self.session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feed = {
            name: t.detach().to("cpu", torch.float32).contiguous().numpy()
            for name, t in zip(self.input_names, inputs, strict=True)
        }
        return tuple(torch.from_numpy(a) for a in self.session.run(self.output_names, feed))


ARENA_ENV = "ENDOKED_ORT_MEMORY_ARENA"
ARENA_MODES: tuple[ArenaMode, ...] = ("shared", "session", "off")
_shared_arena_registered = False


def memory_arena_mode() -> ArenaMode:
    """How ONNX Runtime sessions allocate CPU memory (``$ENDOKED_ORT_MEMORY_ARENA``, read when a session is made;
    a process-wide runtime setting, like the thread count):

    - ``shared`` (default): one arena for every session of the process, registered with ONNX Runtime's
      environment: buffers are reused between calls (no page faults on every call) and the process keeps the
      largest need of any one session, not the sum over sessions;
    - ``session``: ONNX Runtime's default, an arena per session (the CAM maps' one session per input size each
      keep their own largest buffers);
    - ``off``: no arena; every call allocates and frees (least memory, slowest).
    """
    value = os.environ.get(ARENA_ENV, "").strip().lower() or "shared"
    for mode in ARENA_MODES:
        if value == mode:
            return mode
    raise ConfigError(f"${ARENA_ENV}={os.environ[ARENA_ENV]!r}: use one of {', '.join(ARENA_MODES)}")


def _use_shared_arena(ort: Any, opts: Any) -> None:
    global _shared_arena_registered
    if not _shared_arena_registered:
        mem = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(mem, ort.OrtArenaCfg(0, -1, -1, -1))  # ONNX Runtime's arena defaults
        _shared_arena_registered = True
    opts.add_session_config_entry("session.use_env_allocators", "1")


def cache_dir() -> Path:
    """Where exported graphs are kept (see the module docstring)."""
    if os.environ.get("ENDOKED_CACHE_DIR"):
        return Path(os.environ["ENDOKED_CACHE_DIR"]).expanduser() / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "endoked" / "onnx"


def _cache_key(
    module: torch.nn.Module,
    inputs: Sequence[torch.Tensor],
    input_names: Sequence[str],
    output_names: Sequence[str],
    axes: Mapping[str, Mapping[int, str]],
    ort_version: str,
) -> str:
    h = hashlib.sha256()
    head = [type(module).__module__, type(module).__qualname__, torch.__version__, ort_version, _OPSET]
    head += [list(input_names), list(output_names), [list(t.shape) for t in inputs], repr(sorted(axes.items()))]
    h.update(json.dumps(head, default=str).encode())
    h.update(repr(module).encode())
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(str(tensor.dtype).encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def _read_cached(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data or None


def _export(
    module: torch.nn.Module,
    inputs: Sequence[torch.Tensor],
    input_names: Sequence[str],
    output_names: Sequence[str],
    axes: Mapping[str, Mapping[int, str]],
) -> bytes:
    """The module's forward as an ONNX graph (bytes), traced in eval mode without gradients."""
    try:
        import onnx  # noqa: F401  (torch's exporter writes the graph with it)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"exporting a model for ONNX Runtime needs the onnx package: {INSTALL_HINT}"
        ) from exc
    buf = io.BytesIO()
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings(), _quiet_export():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                tuple(inputs),
                buf,  # type: ignore[arg-type]  # a file object is accepted (and documented)
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes={k: dict(v) for k, v in axes.items()},
                opset_version=_OPSET,
                dynamo=False,
            )
    except Exception as exc:  # the exporter raises many types; the caller decides whether torch takes over
        raise OnnxExportError(f"{type(module).__name__} could not be exported to ONNX: {exc}") from exc
    finally:
        module.train(was_training)
    return buf.getvalue()


@contextlib.contextmanager
def _quiet_export() -> Any:
    """Silence the exporter's own INFO/WARNING logging (diagnostics that name no problem of the user's)."""
    names = ("torch.onnx", "torch.onnx._internal", "onnxscript")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for n, lv in saved.items():
            logging.getLogger(n).setLevel(lv)
