"""Forward + backward tokens/s of a reward backbone at several (rows x length) shapes.

    python bench/shapes.py                 # smollm2-135m
    python bench/shapes.py --model minilm-l6

Each shape feeds about the same number of tokens; the best of two timed repeats (after one
warm-up) is printed. On CPU this shows whether padding or long packed rows cost more.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SHAPES = [(1, 1024), (2, 512), (4, 256), (8, 128), (16, 64), (1, 256), (1, 128)]


def main() -> None:
    import torch

    from rewardforge.models import load_reward_backbone

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = load_reward_backbone(args.model)[0].train()
    for rows, length in SHAPES:
        ids = torch.randint(100, 1000, (rows, length))
        times = []
        for _ in range(3):
            start = time.perf_counter()
            model(input_ids=ids).logits.sum().backward()
            times.append(time.perf_counter() - start)
        best = min(times[1:])
        print(f"{rows:>3} x {length:<5} {best:7.3f} s  {rows * length / best:7.0f} tokens/s")


if __name__ == "__main__":
    main()
