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


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU note")
@pytest.mark.parametrize(
    ("dtype", "precision", "native", "said"),
    [
        ("bfloat16", "auto", False, True),
        ("float32", "bf16", False, True),
        ("float32", "auto", False, False),  # the default: nothing to say
        ("bfloat16", "auto", True, False),  # bf16 hardware: no note
    ],
)
def test_bf16_on_a_cpu_without_bf16_hardware_is_said_once(
    dtype, precision, native, said, monkeypatch
):
    from rewardforge.training import precision as module

    monkeypatch.setattr(module, "cpu_has_native_bf16", lambda: native)
    note = module.emulated_bf16_note(dtype, precision)
    assert (note is not None) is said
    if said:
        assert "no bf16 hardware" in note and "\n" not in note


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU note")
def test_train_says_the_bf16_note_before_loading(tiny_llama_dir, hh_file, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from rewardforge.cli import app
    from rewardforge.training import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    command = ["train", "--model", str(tiny_llama_dir), "--data", str(hh_file), "--max-steps", "1"]
    command += ["--dtype", "bfloat16", "--batch-pairs", "4", "--output", str(tmp_path / "rm")]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    (note,) = [index for index, line in enumerate(lines) if "no bf16 hardware" in line]
    assert note < next(i for i, line in enumerate(lines) if line.startswith("forward plan"))
