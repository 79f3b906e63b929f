"""Detection of a device's native reduced precision; a stage's torch thread count, set and restored."""

from __future__ import annotations

import pytest
import torch

from endoked.device import native_low_precision, torch_threads

CPU = torch.device("cpu")


def test_cpu_with_avx512_bf16_gets_bfloat16() -> None:
    assert native_low_precision(CPU, "fpu avx2 avx512f avx512_bf16 avx512_vnni") is torch.bfloat16


def test_cpu_with_amx_bf16_gets_bfloat16() -> None:
    assert native_low_precision(CPU, "avx2 amx_tile amx_bf16 amx_int8") is torch.bfloat16


def test_cpu_without_bf16_gets_none() -> None:
    # avx512f alone, and a flag that merely contains the substring, are not native bf16.
    assert native_low_precision(CPU, "fpu avx2 avx512f avx512bw") is None
    assert native_low_precision(CPU, "xavx512_bf16x") is None


def test_other_devices_get_none() -> None:
    assert native_low_precision(torch.device("meta")) is None


def test_use_low_precision_auto_follows_native_support() -> None:
    from endoked.device import use_low_precision

    assert use_low_precision(None, CPU, "fpu avx2 avx512f avx512_bf16") is True
    assert use_low_precision(None, CPU, "fpu avx2 amx_tile amx_bf16") is True
    assert use_low_precision(None, CPU, "fpu avx avx2 fma") is False  # AVX2 only: fp32
    # an explicit choice wins over detection both ways
    assert use_low_precision(True, CPU, "fpu avx2") is True
    assert use_low_precision(False, CPU, "avx512_bf16") is False
    assert use_low_precision(None, torch.device("meta")) is False


def test_litemedsam_bf16_auto_resolves_from_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    from endoked.prompt_seg import litemedsam

    calls: list[object] = []

    def fake(requested: bool | None, device: torch.device, cpu_flags: str | None = None) -> bool:
        calls.append(requested)
        return requested is None

    monkeypatch.setattr(litemedsam, "use_low_precision", fake)
    model = torch.nn.Module()
    model.image_encoder = torch.nn.Conv2d(3, 4, 1)  # type: ignore[assignment]
    native = litemedsam.LiteMedSamSegmenter(device="cpu", model=model)
    assert native.bf16 is True
    assert native.runtime == "torch"  # a native low-precision encoder keeps torch under runtime auto
    assert litemedsam.LiteMedSamSegmenter(device="cpu", bf16=False, model=model, runtime="torch").bf16 is False
    assert calls == [None, False]


def test_torch_threads_sets_and_restores_the_count() -> None:
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(other):  # restored on the way out of an error too
        raise RuntimeError("stage failed")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
