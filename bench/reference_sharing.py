"""Reference-based (POLAR) groups: the shared prefix against padded rows, when scoring.

    .venv/bin/python bench/reference_sharing.py --model runs/polar-demo/stage1 \
        --data runs/polar-demo/pairs/heldout.jsonl

A reference-based input repeats the prompt and carries the reference before every candidate:
`{prompt}{reference}<|split|>{prompt}{candidate}<|reward|>`. The prompt-shared plan encodes that
prefix once per group; padded rows encode it once per candidate. This scores the same groups both
ways with the model's own recipe, one group a forward (as training on CPU feeds them), and
reports tokens fed, seconds and the largest reward difference between the two layouts.
"""

from __future__ import annotations

import argparse
import time

from rewardforge import RewardModel, load_preferences
from rewardforge.forward.plan import ForwardPlan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="A reference-based reward model folder.")
    parser.add_argument("--data", required=True, help="Reference-based preference rows.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed passes; the best counts.")
    args = parser.parse_args()
    model = RewardModel.load(args.model, device="cpu")
    examples = load_preferences(args.data, reference_mode=True).examples
    rows = [model.encoder.encode_example(example).as_row() for example in examples]
    shared = model.plan
    padded = ForwardPlan(shared.pad_token_id, share_prompt=False)
    results = {}
    for name, plan in (("shared prefix", shared), ("padded rows", padded)):
        fed = sum(plan.batch_tokens(plan.sequence_lengths(row)) for row in rows)
        seconds = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            rewards = plan.score(model.reward_forward, rows, 1, progress=False)  # a group a call
            seconds.append(time.perf_counter() - started)
        results[name] = (fed, min(seconds), rewards)
    (fed_s, time_s, shared_rewards), (fed_p, time_p, padded_rewards) = results.values()
    largest = max(
        abs(a - b)
        for group_a, group_b in zip(shared_rewards, padded_rewards)
        for a, b in zip(group_a, group_b)
    )
    print(f"{len(rows)} groups, {sum(len(row['input_ids']) for row in rows)} candidates")
    for name, (fed, seconds, _) in results.items():
        print(f"{name:<14} tokens fed {fed:>8}  best of {args.repeats}: {seconds:6.2f} s")
    print(
        f"shared prefix: {fed_p / fed_s:.2f}x fewer tokens, {time_p / time_s:.2f}x faster; "
        f"largest reward difference {largest:.2e}"
    )


if __name__ == "__main__":
    main()
