"""Process reward model training against the last PRM trainer TRL shipped and a hand-written one.

    .venv/bin/python bench/prm_throughput.py --seeds 42 --json prm.json

Three trainers, the same backbone (`--model`: MiniLM-L6, an encoder, or SmolLM2-135M, a
decoder), the bundled step-labelled training solutions (`--limit` of them), one epoch, lr 1e-4,
64 solutions a step (16 problems of 4), max length 256, no dropout, fp32, each run its own
subprocess:

- rewardforge: `train()` on the step rows (a reward at every step, in one packed forward; a
  decoder reads each problem's solutions as their prefix tree, so the problem, shared leading
  steps and repeated solutions are fed once; an encoder reads a repeated solution once);
- TRL 1.13's `trl.experimental.prm.PRMTrainer` (`AutoModelForTokenClassification`, two labels),
  installed beside transformers 5.24 in `.venv-trl113` (the script makes it: a venv holding only
  trl==1.13.0, the rest of `.venv` on its path);
- what a user writes without a PRM trainer: `AutoModelForTokenClassification` with one label
  at the last token of each step (TRL's tokenization), one solution a row, the plain `Trainer`.

Each model then gives every step of the 400 held-out solutions a probability of being correct,
read the way it was trained, and ProcessBench's F1 is computed the same way for all three.
Reports solutions/s of the training loop and the metrics.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRL_VENV = ROOT / ".venv-trl113"
SEPARATOR = "\n\n"


def step_rows(path: str, limit: int | None) -> list[dict]:
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
    return rows[:limit] if limit else rows


def tokenize(tokenizer, row: dict, max_length: int) -> dict:
    """TRL 1.13's `PRMTrainer.tokenize_row`: BOS (where the tokenizer has one) and the prompt,
    then each step and the separator, the label at the separator's last token."""
    prompt = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
    if tokenizer.bos_token_id is not None:
        prompt = [tokenizer.bos_token_id] + prompt
    separator = tokenizer.encode(SEPARATOR, add_special_tokens=False)
    ids, labels = list(prompt), [-100] * len(prompt)
    for step, label in zip(row["completions"], row["labels"]):
        step_ids = tokenizer(step, add_special_tokens=False)["input_ids"] + separator
        ids += step_ids
        labels += [-100] * (len(step_ids) - 1) + [int(label)]
    return {"input_ids": ids[:max_length], "labels": labels[:max_length]}


def token_classifier_probabilities(model, tokenizer, rows: list[dict], max_length: int) -> list:
    """Each held-out step's probability of being correct from a two-label token classifier."""
    import torch

    model.eval()
    found = []
    with torch.no_grad():
        for row in rows:
            encoded = tokenize(tokenizer, row, max_length)
            logits = model(input_ids=torch.tensor([encoded["input_ids"]])).logits[0]
            spots = [i for i, label in enumerate(encoded["labels"]) if label != -100]
            found.append(logits[spots].softmax(-1)[:, 1].tolist())
    return found


def run_token_classifier(kind: str, args: argparse.Namespace, seed: int) -> dict:
    import time

    import datasets
    import torch
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    from rewardforge.models import resolve_backbone

    torch.manual_seed(seed)
    path = resolve_backbone(args.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:  # a decoder without one: pad with EOS (labels mask it)
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForTokenClassification.from_pretrained(path, num_labels=2)
    model.config.pad_token_id = tokenizer.pad_token_id
    for module in model.modules():  # no dropout, as the other trainers
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    train_rows = step_rows(args.train, args.limit)
    common = dict(
        output_dir=str(Path(args.work) / f"{kind}-{seed}"),
        per_device_train_batch_size=64,
        learning_rate=1e-4,
        num_train_epochs=1,
        seed=seed,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        logging_steps=10,
        bf16=args.mixed_precision == "bf16",  # autocast, as rewardforge's --mixed-precision
    )
    if kind == "trl":
        from trl.experimental.prm import PRMConfig, PRMTrainer

        data = datasets.Dataset.from_list(
            [{k: row[k] for k in ("prompt", "completions", "labels")} for row in train_rows]
        )
        # TRL's configs default to bf16 autocast; `common` sets it as for the others.
        config = PRMConfig(
            **common, step_separator=SEPARATOR, max_length=256, gradient_checkpointing=False
        )
        trainer = PRMTrainer(
            model=model, args=config, train_dataset=data, processing_class=tokenizer
        )
    else:
        data = datasets.Dataset.from_list([tokenize(tokenizer, row, 256) for row in train_rows])
        trainer = Trainer(
            model=model,
            args=TrainingArguments(**common),
            train_dataset=data,
            data_collator=DataCollatorForTokenClassification(tokenizer),
        )
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    held_out = step_rows(args.eval, None)
    probabilities = token_classifier_probabilities(model, tokenizer, held_out, 256)
    return {"seconds": seconds, "solutions": len(train_rows), "probabilities": probabilities}


def run_rewardforge(args: argparse.Namespace, seed: int) -> dict:
    from rewardforge import RewardModel, TrainConfig, train

    rows = step_rows(args.train, args.limit)
    data = Path(args.work) / "train.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    config = TrainConfig(
        data=[str(data)],
        model=args.model,
        template=args.template,
        output=str(Path(args.work) / f"rewardforge-{seed}"),
        batch_pairs=16,
        lr=1e-4,
        max_length=256,
        seed=seed,
        max_tokens_per_micro_batch=args.micro_batch_tokens,
        mixed_precision=args.mixed_precision,
    )
    result = train(config)
    model = RewardModel.load(result.output_dir, device="cpu")
    held_out = step_rows(args.eval, None)
    probabilities = model.score_steps(
        [row["prompt"] for row in held_out], [row["completions"] for row in held_out]
    )
    seconds = result.metrics["train_runtime_s"]
    return {"seconds": seconds, "solutions": len(rows), "probabilities": probabilities}


def worker(args: argparse.Namespace) -> None:
    kind, seed = args.worker[0], int(args.worker[1])
    result = (
        run_rewardforge(args, seed)
        if kind == "rewardforge"
        else run_token_classifier(kind, args, seed)
    )
    print("RESULT " + json.dumps(result))


def trl_python() -> str:
    """A venv holding trl==1.13.0 only, with `.venv`'s packages (transformers 5.24) behind it."""
    python = TRL_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TRL_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "trl==1.13.0"], check=True
        )
        site = next((TRL_VENV / "lib").glob("python*/site-packages"))
        ours = next((ROOT / ".venv" / "lib").glob("python*/site-packages"))
        (site / "rewardforge-venv.pth").write_text(f"{ours}\n{ROOT}\n")
    return str(python)


def main() -> None:
    from rewardforge.data.sample import prm_sample_paths
    from rewardforge.training.step_metrics import step_metrics

    train_file, eval_file, _ = prm_sample_paths()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="42")
    parser.add_argument("--limit", type=int, help="train on the first N solutions")
    parser.add_argument("--trainers", default="rewardforge,trl,hand-written")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--work", default="/tmp/rewardforge-prm-bench")
    parser.add_argument("--train", default=train_file)
    parser.add_argument("--eval", default=eval_file)
    parser.add_argument(
        "--micro-batch-tokens", type=int, help="rewardforge's --max-tokens-per-micro-batch"
    )
    parser.add_argument(
        "--mixed-precision", default="no", help="no or bf16 (autocast, for every trainer)"
    )
    parser.add_argument("--model", default="minilm-l6", help="minilm-l6 or smollm2-135m")
    parser.add_argument(
        "--template", help="rewardforge's --template (plain: the token classifiers' text)"
    )
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    labels = [row["labels"] for row in step_rows(args.eval, None)]
    results = []
    for seed in args.seeds.split(","):
        for kind in args.trainers.split(","):
            python = trl_python() if kind == "trl" else sys.executable
            command = [python, __file__, "--worker", kind, seed, "--work", args.work]
            command += ["--train", args.train, "--eval", args.eval, "--model", args.model]
            command += ["--template", args.template] if args.template else []
            command += ["--limit", str(args.limit)] if args.limit else []
            if args.micro_batch_tokens:
                command += ["--micro-batch-tokens", str(args.micro_batch_tokens)]
            command += ["--mixed-precision", args.mixed_precision]
            env = {**os.environ, "THP_MEM_ALLOC_ENABLE": "1"}
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"{kind} failed:\n{done.stderr[-3000:]}")
            run = json.loads(line[len("RESULT ") :])
            metrics = step_metrics(
                run.pop("probabilities"), [[float(y) for y in ys] for ys in labels]
            )
            row = {"trainer": kind, "seed": int(seed), **run, **metrics}
            row["solutions_per_s"] = row["solutions"] / row["seconds"]
            results.append(row)
            print(
                f"{kind:<13} seed {seed}: {row['solutions_per_s']:6.2f} solutions/s "
                f"({row['seconds']:.1f} s), step accuracy {row['step_accuracy']:.3f}, "
                f"ProcessBench F1 {row['processbench_f1']:.3f}",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
