import pytest
import torch


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU defaults")
def test_mixed_precision_defaults_follow_the_device():
    from rewardforge.training.precision import mixed_precision

    assert mixed_precision("auto") == "no"  # this CPU machine: fp32, bf16 only on request
    assert mixed_precision("bf16") == "bf16"
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        mixed_precision("fp16")
