"""Which autocast precision a run uses, decided by the device."""

from __future__ import annotations

from pathlib import Path

import torch

from rewardforge.errors import UserError


def mixed_precision(requested: str) -> str:
    """The autocast precision to train with: `bf16`, `fp16` or `no`.

    `auto` means bf16 on GPUs that support it, fp16 (with loss scaling) on older GPUs, and no
    autocast on CPU, where bf16 matmuls are slower than fp32 on most processors. Weights stay
    float32 (master weights) unless `--dtype bfloat16` asks for pure bf16.
    """
    cuda = torch.cuda.is_available()
    if requested == "fp16" and not cuda:
        raise UserError(
            "--mixed-precision fp16 needs a CUDA GPU (loss scaling runs there); "
            "use --mixed-precision bf16 on a CPU."
        )
    if requested != "auto":
        return requested
    if not cuda:
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX), as Linux's cpuinfo
    lists its flags; False where there is no such file."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def emulated_bf16_note(dtype: str, requested_precision: str) -> str | None:
    """One line when bf16 is asked for (`--dtype bfloat16` or `--mixed-precision bf16`) on a
    CPU that has no bf16 hardware, where torch emulates it, slower than float32; else None."""
    asked = dtype == "bfloat16" or requested_precision == "bf16"
    if not asked or torch.cuda.is_available() or cpu_has_native_bf16():
        return None
    return (
        "note: this CPU has no bf16 hardware (no AVX512-BF16 or AMX), so torch emulates bf16 "
        "and it runs slower than float32 here; float32 is the CPU default (leave out "
        "--dtype bfloat16 and --mixed-precision bf16)."
    )
