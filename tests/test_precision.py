import pytest
import torch


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU defaults")
def test_mixed_precision_defaults_follow_the_device():
    from rewardforge.training.precision import mixed_precision

    assert mixed_precision("auto") == "no"  # this CPU machine: fp32, bf16 only on request
    assert mixed_precision("bf16") == "bf16"
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        mixed_precision("fp16")


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        ("fpu avx2 avx512f avx512_bf16 sha_ni", True),
        ("fpu amx_bf16 amx_tile", True),
        ("fpu avx2", False),
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, flags, native):
    from rewardforge.training.precision import cpu_has_native_bf16

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: a CPU\nflags\t\t: {flags}\n")
    assert cpu_has_native_bf16(cpuinfo) is native


def test_without_cpuinfo_there_is_no_native_bf16(tmp_path):
    from rewardforge.training.precision import cpu_has_native_bf16

    assert cpu_has_native_bf16(tmp_path / "missing") is False
