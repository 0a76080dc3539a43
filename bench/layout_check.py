"""The layout check's float32 numbers, per architecture: how far the hidden state the reward
head reads under the shared-prompt layout is from a separate forward of each response.

    .venv/bin/python bench/layout_check.py

For each tiny random decoder the tests build (tests/conftest.py), it prints the relative
difference for the correct layout, for a backbone that ignores position ids and for one that
ignores the attention mask, and for the Llama loaded in pure bf16 (checked on its float32
two-layer copy). The threshold in `rewardforge/forward/layout_check.py` sits between the two groups.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import rewardforge.forward.layout_check as layout_check  # noqa: E402
from tests.conftest import TINY_DECODERS, save_tiny_decoder  # noqa: E402
from tests.test_forward_plan import (  # noqa: E402
    build,
    ignore_attention_mask,
    ignore_position_ids,
    layout_to_check,
)


def difference(model, encoder) -> str:
    layout_check._LAYOUT_TOLERANCE = 0.0  # report every difference, not only the failing ones
    message = layout_check.layout_problem(model, encoder, layout_to_check(model, encoder))
    return re.search(r"by (\S+) \(relative\)", message).group(1)


def main() -> None:
    print(f"{'architecture':<14}{'correct':>10}{'no position ids':>17}{'no mask':>10}{'bf16':>10}")
    for model_type in TINY_DECODERS:
        directory = save_tiny_decoder(Path(tempfile.mkdtemp()), model_type)
        row = [difference(*build(str(directory))[:2])]
        for breakage in (ignore_position_ids, ignore_attention_mask):
            model, encoder, _ = build(str(directory))
            model.backbone.forward = breakage(model.backbone)
            row.append(difference(model, encoder))
        row.append(difference(*build(str(directory), dtype="bfloat16")[:2]))
        print(
            f"{model_type:<14}"
            + "".join(f"{value:>{width}}" for value, width in zip(row, (10, 17, 10, 10)))
        )


if __name__ == "__main__":
    main()
