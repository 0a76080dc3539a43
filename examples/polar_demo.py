"""POLAR in minutes on a CPU: pre-train a reference-based reward model to tell policies apart,
then fine-tune it to a custom preference (concise answers) from a few ranked examples.

    .venv/bin/python examples/polar_demo.py [--work-dir runs/polar-demo]

1. Policy pool: the bundled `smollm2-135m` as three policies (low temperature; told to answer in
   French; high temperature) answers 40 HH-RLHF questions twice each (`rewardforge polar-data`);
   8 questions are held out.
2. Stage 1, policy-discriminative pre-training (`rewardforge train --reference-mode`): for a
   reference answer from one policy, another answer of the same policy must outscore one of a
   different policy. Held-out accuracy is measured before (the untrained head) and after.
3. Stage 2, fine-tuning with LoRA on `examples/concise_answers/train.jsonl` (Chinese and
   English ranked answers, best first; the best is the reference).
4. `rewardforge eval --compare` of the stage-1 and stage-2 models on the separate verification
   prompts of `examples/concise_answers/verify.jsonl`: the share of prompts whose concise answer
   is ranked first, before and after.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rewardforge import TrainConfig, train
from rewardforge.data.sample import sample_paths
from rewardforge.evaluation.evaluate import compare, evaluate
from rewardforge.generation.polar_data import PoolPolicy, polar_data
from rewardforge.models import load_reward_backbone
from rewardforge.recipe import (
    DEFAULT_REWARD_MARKER,
    DEFAULT_SPLIT_TOKEN,
    RecipeEncoder,
    ScoringRecipe,
)
from rewardforge.scoring.reward_model import RewardModel

CONCISE = Path(__file__).resolve().parent / "concise_answers"
POOL = [  # one small model, three policies that write visibly differently
    PoolPolicy("focused", temperature=0.3, max_new_tokens=32),
    PoolPolicy(
        "french", system="Réponds toujours en français.", temperature=0.7, max_new_tokens=32
    ),
    PoolPolicy("wild", temperature=1.6, top_p=1.0, max_new_tokens=32),
]
MAX_LENGTH = 320


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("runs/polar-demo"))
    work = parser.parse_args().work_dir
    work.mkdir(parents=True, exist_ok=True)
    train_file, _ = sample_paths()
    rows = [json.loads(line) for line in Path(train_file).read_text("utf-8").splitlines()]
    questions = [first_question(row["chosen"]) for row in rows]
    prompts = [{"prompt": q} for q in questions if len(q) < 160][:40]
    (work / "prompts.jsonl").write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in prompts), "utf-8"
    )

    timings = {}
    started = time.perf_counter()
    pairs = polar_data(POOL, work / "prompts.jsonl", work / "pairs")
    timings["generation"] = time.perf_counter() - started
    heldout = str(pairs.output_dir / "heldout.jsonl")
    before = evaluate(untrained_reference_model(), heldout, progress=False)["accuracy"]

    started = time.perf_counter()
    pretrained = train(
        TrainConfig(
            data=[str(pairs.output_dir / "train.jsonl")],
            eval_data=[heldout],
            model="smollm2-135m",
            output=str(work / "stage1"),
            reference_mode=True,
            max_length=MAX_LENGTH,
            batch_pairs=8,
            lr=5e-5,
        )
    )
    timings["stage 1"] = time.perf_counter() - started

    started = time.perf_counter()
    tuned = train(
        TrainConfig(
            data=[str(CONCISE / "train.jsonl")],
            model=str(pretrained.output_dir),
            output=str(work / "stage2"),
            lora=True,
            epochs=4,
            batch_pairs=4,
            lr=2e-4,
            max_length=MAX_LENGTH,
        )
    )
    timings["stage 2"] = time.perf_counter() - started
    verification = compare(
        pretrained.output_dir, tuned.output_dir, str(CONCISE / "verify.jsonl"), progress=False
    )

    print(
        f"policy pool: {pairs.train_pairs} train pairs, {pairs.heldout_pairs} held-out pairs "
        f"from {pairs.prompts} questions"
    )
    print(
        f"held-out policy-discrimination accuracy: {before:.4f} untrained, "
        f"{pretrained.metrics['eval_accuracy']:.4f} after stage 1"
    )
    for example in verification["rank_changes"]:
        print(f"\n{example['prompt']}  (reference: {example['reference']})")
        for candidate in example["candidates"]:
            base, after = candidate["rewards"].values()
            ranks = " -> ".join(str(rank) for rank in candidate["ranks"].values())
            print(f"  {base:8.4f} {after:8.4f}  rank {ranks}  {candidate['response'][:50]}")
    shares = list(verification["preferred_first"].values())
    print(
        f"\nconcise answer ranked first on {shares[0]:.0%} of verification prompts before "
        f"fine-tuning, {shares[1]:.0%} after"
    )
    print("seconds: " + ", ".join(f"{name} {seconds:.0f}" for name, seconds in timings.items()))


def untrained_reference_model() -> RewardModel:
    """SmolLM2 with a freshly initialised reward head and the reference-mode recipe."""
    markers = [DEFAULT_SPLIT_TOKEN, DEFAULT_REWARD_MARKER]
    model, tokenizer, _ = load_reward_backbone("smollm2-135m", added_tokens=markers)
    recipe = ScoringRecipe.for_model(tokenizer, False, MAX_LENGTH, reference_mode=True)
    return RewardModel(model, RecipeEncoder(recipe, tokenizer))


def first_question(transcript: str) -> str:
    """The first human turn of an HH-RLHF transcript."""
    return transcript.split("\n\nHuman: ", 1)[1].split("\n\nAssistant:", 1)[0].strip()


if __name__ == "__main__":
    main()
