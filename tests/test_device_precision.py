"""Detection of a device's native reduced precision."""

from __future__ import annotations

import torch

from endoked.device import native_low_precision

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
