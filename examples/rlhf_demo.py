"""The three-stage loop in minutes on a CPU: SFT, a reward model, then GRPO, on bundled data.

    .venv/bin/python examples/rlhf_demo.py [--work-dir runs/demo]

1. SFT: `smollm2-135m` on the first human turn and assistant answer of 64 bundled HH-RLHF
   "chosen" conversations (4 steps).
2. Reward model: `minilm-l6` on 400 bundled HH-RLHF preference pairs (one epoch).
3. GRPO: the SFT policy against that reward model on 16 HH questions (8 steps), with the mean
   reward on 8 held-out questions measured before and after.

Each stage is one rewardforge API call (the same as `rewardforge sft|train|rlhf`); the numbers
are printed at the end. A few steps show that the loop runs end to end, not that it improves a
policy: that takes real step counts on a GPU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rewardforge import TrainConfig, train
from rewardforge.data.sample import sample_paths
from rewardforge.policy.rlhf import rlhf
from rewardforge.policy.rlhf_config import RLHFConfig
from rewardforge.policy.tuning import sft
from rewardforge.policy.tuning_config import SFTRunConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("runs/demo"))
    work = parser.parse_args().work_dir
    work.mkdir(parents=True, exist_ok=True)
    train_file, dev_file = sample_paths()
    conversations = [json.loads(line) for line in Path(train_file).read_text("utf-8").splitlines()]
    held_out = [json.loads(line) for line in Path(dev_file).read_text("utf-8").splitlines()]

    demonstrations = [first_exchange(row["chosen"]) for row in conversations[:64]]
    write(work / "sft.jsonl", [{"prompt": q, "answer": a} for q, a in demonstrations])
    write(work / "pairs.jsonl", conversations[64:464])
    write(work / "prompts.jsonl", [question(row) for row in held_out[:16]])
    write(work / "held_out.jsonl", [question(row) for row in held_out[100:108]])

    timings = {}
    started = time.perf_counter()
    policy = sft(
        SFTRunConfig(
            data=str(work / "sft.jsonl"),
            model="smollm2-135m",
            output=str(work / "sft"),
            max_steps=4,
            batch_size=4,
            lr=2e-5,
            max_length=256,
            logging_steps=1,
        )
    )
    timings["sft"] = time.perf_counter() - started

    started = time.perf_counter()
    reward_model = train(
        TrainConfig(
            data=[str(work / "pairs.jsonl")],
            model="minilm-l6",
            output=str(work / "rm"),
            max_length=256,
        )
    )
    timings["reward model"] = time.perf_counter() - started

    started = time.perf_counter()
    optimised = rlhf(
        RLHFConfig(
            reward_model=str(reward_model.output_dir),
            prompts=str(work / "prompts.jsonl"),
            eval_prompts=str(work / "held_out.jsonl"),
            policy=str(policy.output_dir),
            output=str(work / "grpo"),
            max_steps=8,
            max_new_tokens=32,
            lr=1e-5,
        )
    )
    timings["grpo"] = time.perf_counter() - started

    metrics = optimised.metrics
    print(f"SFT loss over 4 steps: {policy.metrics['train_loss']:.4f}")
    print(f"reward model: trained {reward_model.metrics['train_pairs']} pairs")
    print(
        f"held-out reward of the policy: {metrics['heldout_reward_before']:.4f} before GRPO, "
        f"{metrics['heldout_reward_after']:.4f} after ({metrics['steps']} steps, "
        f"final KL {metrics['last_kl']:.4f})"
    )
    print("seconds: " + ", ".join(f"{name} {seconds:.0f}" for name, seconds in timings.items()))


def first_exchange(transcript: str) -> tuple[str, str]:
    """The first human turn and the assistant's answer to it, from an HH-RLHF transcript."""
    human = transcript.split("\n\nHuman: ", 1)[1]
    question, _, rest = human.partition("\n\nAssistant: ")
    return question.strip(), rest.split("\n\nHuman: ", 1)[0].strip()


def question(row: dict) -> dict:
    return {"prompt": first_exchange(row["chosen"])[0]}


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), "utf-8")


if __name__ == "__main__":
    main()
