"""Step-reward scoring speed of a process reward model: N solutions per problem read together
(sharing the problem's tokens, packed, length-sorted batches) against each solution alone.

    .venv/bin/python bench/prm_scoring.py --model runs/prm --problems 50 --n 8

The solutions come from the bundled arithmetic generator (`--n` per problem, seed 3). Both ways
run `RewardModel.score_steps` with the same model; alone means one call per solution. Runs
alternate, the best of `--repeats` counts; the largest difference between the two ways'
probabilities is printed too.
"""

from __future__ import annotations

import argparse
import time

from rewardforge import RewardModel
from rewardforge.data.arithmetic_steps import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="A process reward model folder.")
    parser.add_argument("--problems", type=int, default=50)
    parser.add_argument("--n", type=int, default=8, help="Solutions per problem.")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rm = RewardModel.load(args.model, device="cpu")
    rows = generate(args.problems, args.n, seed=3)
    prompts = [row["prompt"] for row in rows]
    solutions = [row["completions"] for row in rows]
    steps = sum(len(s) for s in solutions)
    best = {"together": float("inf"), "alone": float("inf")}
    for _ in range(args.repeats):
        started = time.perf_counter()
        together = rm.score_steps(prompts, solutions)
        best["together"] = min(best["together"], time.perf_counter() - started)
        started = time.perf_counter()
        alone = [rm.score_steps([p], [s])[0] for p, s in zip(prompts, solutions)]
        best["alone"] = min(best["alone"], time.perf_counter() - started)
    largest = max(abs(a - b) for x, y in zip(together, alone) for a, b in zip(x, y))
    print(f"{len(rows)} solutions ({args.n} per problem), {steps} steps")
    for name, seconds in best.items():
        print(f"{name:<9} {len(rows) / seconds:8.1f} solutions/s  {steps / seconds:8.1f} steps/s")
    print(
        f"together {best['alone'] / best['together']:.2f}x faster; largest difference {largest:.1e}"
    )


if __name__ == "__main__":
    main()
