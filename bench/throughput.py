"""Training throughput: TRL's RewardTrainer against rewardforge on the same backbone and pairs.

    python bench/throughput.py                      # the CPU rows, both trainers (2 cores: ~45 min)
    python bench/throughput.py --rows smollm2-135m  # one row
    python bench/throughput.py --limit 8            # a quick check: 8 training pairs per row
    python bench/throughput.py --rows minilm-l6 --seeds 42,43,44   # accuracy over seeds
    python bench/throughput.py --rows smollm2-135m --cpu-bf16   # bf16 autocast for both, on CPU
    python bench/throughput.py --rows llama-1b,llama-8b-lora --data hh,long   # GPU mode

The `llama-*` rows are random-weight Llama shapes (Llama-3.2-1B; Llama-3-8B with LoRA and
gradient checkpointing) written once to the cache with SmolLM2's tokenizer and chat template,
trained in bf16 autocast on a CUDA GPU; `llama-tiny` is the same code path at toy size, for a
CPU check. `--data long` prefixes every conversation with four earlier ones from the split
(multi-turn histories, max length 4096).

Each (row, trainer) runs in its own subprocess, so that peak RSS is that run's own. Both
trainers get the same pairs, tokenized identically by rewardforge's scoring recipe (so TRL drops
nothing for length), the same pairs per optimizer step, learning rate and max length, fp32, no
gradient checkpointing, no dropout (both trainers' default), one epoch, the same seed, and the
same THP_MEM_ALLOC_ENABLE (`--huge-pages`, on by default as in the rewardforge CLI). TRL
takes the whole step in one forward pass on CPU and 8 pairs a pass on GPU; rewardforge cuts its
steps by its default token budget (`--micro-batch-tokens` sets another). Tokens
fed counts every position given to the model, padding included. Achieved FLOP/s is
6 x non-embedding parameters x tokens fed / training time, shown as a fraction of a plain fp32
matmul's FLOP/s measured at the start of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "rewardforge" / "sample_data" / "train.jsonl"
DEV = ROOT / "rewardforge" / "sample_data" / "dev.jsonl"
LIMIT = int(os.environ.get("BENCH_LIMIT", "0")) or None
DEV_LIMIT = int(os.environ.get("BENCH_DEV_LIMIT", "0")) or None
MICRO_BATCH_TOKENS = int(os.environ.get("BENCH_MICRO_BATCH_TOKENS", "0")) or None
ROWS = {
    "smollm2-135m": {"pairs": LIMIT or 48, "max_length": 1024, "batch_pairs": 8, "lr": 1e-5},
    "minilm-l6": {"pairs": LIMIT, "max_length": 512, "batch_pairs": 16, "lr": 5e-5},
    # GPU rows: 32 pairs a step (TRL: 8 a micro-batch; rewardforge: its token budget), bf16
    # autocast over float32 weights.
    "llama-1b": {"pairs": LIMIT, "max_length": 1024, "batch_pairs": 32, "lr": 1e-5, "gpu": True},
    "llama-8b-lora": {
        "pairs": LIMIT,
        "max_length": 1024,
        "batch_pairs": 32,
        "lr": 1e-4,
        "gpu": True,
        "lora": True,
        "gradient_checkpointing": True,
    },
    "llama-tiny": {"pairs": LIMIT or 16, "max_length": 256, "batch_pairs": 8, "lr": 1e-4},
}
SHAPES = {  # random-weight Llama configurations of the GPU rows
    "llama-1b": dict(
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        rope_theta=500000.0,
        tie_word_embeddings=True,
    ),
    "llama-8b-lora": dict(
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        rope_theta=500000.0,
    ),
    "llama-tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=49152,
    ),
}
LONG_HISTORY = 4  # earlier conversations put before each one by --data long
LONG_MAX_LENGTH = 4096


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        default="smollm2-135m,minilm-l6",
        help=f"comma-separated backbones, of: {', '.join(ROWS)} (default: the two CPU rows)",
    )
    parser.add_argument("--trainers", default="trl,rewardforge")
    parser.add_argument("--limit", type=int, help="train on at most this many pairs per row")
    parser.add_argument("--dev-limit", type=int, help="evaluate on the first N dev pairs only")
    parser.add_argument("--seeds", default="42", help="comma-separated seeds, one run each")
    parser.add_argument("--data", default="hh", help="comma-separated: hh, long")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--micro-batch-tokens", type=int, help="rewardforge's --max-tokens-per-micro-batch"
    )
    parser.add_argument(
        "--huge-pages",
        choices=("on", "off"),
        default="on",
        help="THP_MEM_ALLOC_ENABLE for both trainers' runs (on: what the rewardforge CLI sets)",
    )
    parser.add_argument(
        "--cpu-bf16",
        action="store_true",
        help="CPU rows: bf16 autocast over float32 weights for both trainers (default fp32)",
    )
    parser.add_argument(
        "--worker", nargs=4, metavar=("ROW", "TRAINER", "SEED", "DATA"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    unknown = set(args.rows.split(",")) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; choose from {', '.join(ROWS)}")
    if not args.worker:  # before this process imports torch; every worker inherits it
        os.environ["THP_MEM_ALLOC_ENABLE"] = "1" if args.huge_pages == "on" else "0"
    if args.limit:
        os.environ["BENCH_LIMIT"] = str(args.limit)
    if args.dev_limit:
        os.environ["BENCH_DEV_LIMIT"] = str(args.dev_limit)
    if args.micro_batch_tokens:
        os.environ["BENCH_MICRO_BATCH_TOKENS"] = str(args.micro_batch_tokens)
    if args.cpu_bf16:
        os.environ["BENCH_CPU_BF16"] = "1"
    if args.worker:
        row, trainer, seed, data = args.worker
        run = run_trl if trainer == "trl" else run_rewardforge
        result = run(row, int(seed), data)
        result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        result["peak_gpu_gib"] = peak_gpu_memory_gib()
        print("RESULT " + json.dumps(result))
        return
    matmul = matmul_flops()
    print(
        f"plain matmul ({matmul_dtype()}): {matmul / 1e9:.1f} GFLOP/s, huge pages {args.huge_pages}"
        f", CPU bf16 autocast {'on' if args.cpu_bf16 else 'off'}"
    )
    results = []
    for row in args.rows.split(","):
        for data in args.data.split(","):
            for seed in args.seeds.split(","):
                for trainer in args.trainers.split(","):
                    print(f"running {trainer} on {row}, {data} data, seed {seed} ...", flush=True)
                    result = run_worker(row, trainer, seed, data)
                    run = {
                        "row": row,
                        "data": data,
                        "trainer": trainer,
                        "seed": int(seed),
                        "huge_pages": args.huge_pages,
                        "cpu_bf16": args.cpu_bf16,
                    }
                    results.append({**run, **result})
                if args.json:  # after every run, so that a long benchmark keeps what it has
                    args.json.write_text(json.dumps({"matmul_flops": matmul, "results": results}))
    print_table(results, matmul)


def run_worker(row: str, trainer: str, seed: str, data: str) -> dict:
    command = [sys.executable, __file__, "--worker", row, trainer, seed, data]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{trainer} on {row} failed:\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def matmul_dtype():
    import torch

    return torch.bfloat16 if torch.cuda.is_available() or cpu_bf16() else torch.float32


def cpu_bf16() -> bool:
    """Whether --cpu-bf16 was given (read at call time: main sets it after this module loads)."""
    return os.environ.get("BENCH_CPU_BF16") == "1"


def matmul_flops(repeats: int = 10) -> float:
    """A plain matmul's FLOP/s: 2048^2 on CPU (fp32, or bf16 with --cpu-bf16), bf16 8192^2 on a
    GPU (its dense peak)."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    size = 8192 if device == "cuda" else 2048
    a = torch.randn(size, size, device=device, dtype=matmul_dtype())
    b = torch.randn(size, size, device=device, dtype=matmul_dtype())
    a @ b
    synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_gpu_memory_gib() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def backbone(row: str) -> str:
    """The bundled backbone's folder, or the random-weight Llama of a shape row (written once)."""
    from rewardforge.models.backbones import cache_dir, resolve_backbone

    if row not in SHAPES:
        return resolve_backbone(row)
    directory = cache_dir() / "bench" / row
    if (directory / "config.json").is_file():
        return str(directory)
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = shape_tokenizer()
    config = LlamaConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, **SHAPES[row]
    )
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)  # half the disk; trained in fp32
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def shape_tokenizer():
    """SmolLM2's tokenizer and chat template, kept in the cache's `bench/tokenizer` (3.5 MB) so
    that a GPU machine without SmolLM2 can be handed this folder alone (bench/gpu_prepare.sh)."""
    from transformers import AutoTokenizer

    from rewardforge.models.backbones import cache_dir, resolve_backbone

    directory = cache_dir() / "bench" / "tokenizer"
    if not (directory / "tokenizer_config.json").is_file():
        AutoTokenizer.from_pretrained(resolve_backbone("smollm2-135m")).save_pretrained(directory)
    return AutoTokenizer.from_pretrained(directory)


def data_file(data: str, split: Path, work_dir: Path) -> Path:
    """The bundled split, or (`long`) each conversation after LONG_HISTORY earlier ones."""
    if data == "hh":
        return split
    rows = [json.loads(line) for line in split.read_text(encoding="utf-8").splitlines()]
    history = [row["chosen"] for row in rows]
    longer = []
    for index, row in enumerate(rows):
        before = "".join(history[index - LONG_HISTORY : index] if index >= LONG_HISTORY else [])
        longer.append({"chosen": before + row["chosen"], "rejected": before + row["rejected"]})
    target = work_dir / f"long-{split.name}"
    target.write_text("".join(json.dumps(row) + "\n" for row in longer), encoding="utf-8")
    return target


def max_length(row: str, data: str) -> int:
    return LONG_MAX_LENGTH if data == "long" else ROWS[row]["max_length"]


def tokenized_pairs(row: str, path: Path, limit: int | None, data: str, model=None):
    """(model, tokenizer, rows) with rewardforge's recipe; rows are pair rows.

    Pass `model=False` for the tokenizer and rows alone (no weights loaded)."""
    from transformers import AutoConfig, AutoTokenizer

    from rewardforge.data import load_preferences
    from rewardforge.models import load_reward_backbone
    from rewardforge.recipe import RecipeEncoder, ScoringRecipe
    from rewardforge.recipe.model_types import is_encoder_config

    if model is False:
        tokenizer = AutoTokenizer.from_pretrained(backbone(row))
        is_encoder = is_encoder_config(AutoConfig.from_pretrained(backbone(row)).model_type)
        model = None
    else:
        model, tokenizer, is_encoder = load_reward_backbone(backbone(row))
    recipe = ScoringRecipe.for_model(tokenizer, is_encoder, max_length(row, data))
    encoder = RecipeEncoder(recipe, tokenizer)
    examples = load_preferences(path).examples[:limit]
    return model, tokenizer, [encoder.encode_example(e).as_row() for e in examples]


def parameter_count(row: str) -> int:
    """Non-embedding parameters of the row's reward model, counted without loading weights."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(backbone(row), num_labels=1)
    with torch.device("meta"):
        return non_embedding_parameters(AutoModelForSequenceClassification.from_config(config))


def non_embedding_parameters(model) -> int:
    embeddings = sum(p.numel() for p in model.get_input_embeddings().parameters())
    return sum(p.numel() for p in model.parameters()) - embeddings


def micro_batch(row: str) -> int:
    """Pairs per forward pass: 8 on the GPU rows; on CPU TRL takes the whole step at once."""
    return 8 if ROWS[row].get("gpu") else ROWS[row]["batch_pairs"]


def run_trl(row: str, seed: int, data: str) -> dict:
    import datasets
    import torch
    from transformers import set_seed
    from trl import RewardConfig, RewardTrainer

    settings = ROWS[row]
    # rewardforge's train() seeds before it loads the backbone, so its new reward head depends on
    # the seed; seeding here too gives TRL the very same head at each seed
    set_seed(seed)
    with tempfile.TemporaryDirectory() as work_dir:
        train_file = data_file(data, TRAIN, Path(work_dir))
        dev_file = data_file(data, DEV, Path(work_dir))
        model, tokenizer, train_rows = tokenized_pairs(row, train_file, settings["pairs"], data)
        _, _, dev_rows = tokenized_pairs(row, dev_file, DEV_LIMIT, data, model=False)
    if torch.cuda.is_available():
        model.cuda()

    def as_trl(rows):
        return datasets.Dataset.from_list(
            [{"chosen_ids": r["input_ids"][0], "rejected_ids": r["input_ids"][1]} for r in rows]
        )

    tokens = {"fed": 0}

    def count(module, args, kwargs):
        if module.training:
            tokens["fed"] += kwargs["input_ids"].numel()

    model.register_forward_pre_hook(count, with_kwargs=True)
    micro = micro_batch(row)
    with tempfile.TemporaryDirectory() as output:
        config = RewardConfig(
            output_dir=output,
            per_device_train_batch_size=micro,
            gradient_accumulation_steps=settings["batch_pairs"] // micro,
            per_device_eval_batch_size=micro,
            learning_rate=settings["lr"],
            max_length=max_length(row, data),
            num_train_epochs=1,
            gradient_checkpointing=settings.get("gradient_checkpointing", False),
            bf16=bool(settings.get("gpu")) or cpu_bf16(),
            use_cpu=cpu_bf16() and not torch.cuda.is_available(),  # transformers' CPU bf16 path
            report_to="none",
            save_strategy="no",
            logging_steps=10,
            seed=seed,
        )
        trainer = RewardTrainer(
            model=model,
            args=config,
            train_dataset=as_trl(train_rows),
            eval_dataset=as_trl(dev_rows),
            processing_class=tokenizer,
            peft_config=lora_config() if settings.get("lora") else None,
        )
        fit = trainer.train()
        accuracy = pairwise_accuracy(trainer.model, dev_rows, bf16=config.bf16)
    runtime = fit.metrics["train_runtime"]
    parameters = non_embedding_parameters(model)
    return summary(len(train_rows), tokens["fed"], runtime, accuracy, parameters, train_rows)


def pairwise_accuracy(model, rows: list[dict], bf16: bool) -> float:
    """Share of pairs whose chosen response gets the strictly higher reward (ties count as
    wrong), each response run alone: how rewardforge's evaluation counts. TRL's own
    `eval_accuracy` is a mean of per-batch accuracies, which weighs a short last batch more."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    right = 0
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for row in rows:
            chosen, rejected = (
                model(input_ids=torch.tensor([ids], device=device)).logits.float().item()
                for ids in row["input_ids"]
            )
            right += chosen > rejected
    return right / len(rows)


def lora_config():
    from peft import LoraConfig

    # rewardforge's --lora defaults: rank 16, alpha 32, dropout 0.05, every linear layer
    return LoraConfig(
        task_type="SEQ_CLS", r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear"
    )


def run_rewardforge(row: str, seed: int, data: str) -> dict:
    from rewardforge import TrainConfig, train

    settings = ROWS[row]
    with tempfile.TemporaryDirectory() as output:
        train_file = data_file(data, TRAIN, Path(output))
        dev_file = data_file(data, DEV, Path(output))
        _, _, train_rows = tokenized_pairs(row, train_file, settings["pairs"], data, model=False)
        parameters = parameter_count(row)
        config = TrainConfig(
            data=[str(first_lines(train_file, settings["pairs"], Path(output) / "train.jsonl"))],
            eval_data=[str(first_lines(dev_file, DEV_LIMIT, Path(output) / "dev.jsonl"))],
            model=backbone(row),
            output=str(Path(output) / "rm"),
            batch_pairs=settings["batch_pairs"],
            lr=settings["lr"],
            max_length=max_length(row, data),
            warmup_ratio=0.0,
            save_steps=10**6,
            seed=seed,
            lora=settings.get("lora", False),
            gradient_checkpointing=settings.get("gradient_checkpointing", False),
            max_tokens_per_micro_batch=MICRO_BATCH_TOKENS,
            mixed_precision="bf16" if cpu_bf16() else "auto",
        )
        metrics = train(config).metrics
    return summary(
        metrics["train_pairs"],
        metrics["train_tokens"],
        metrics["train_runtime_s"],
        metrics["eval_accuracy"],
        parameters,
        train_rows,
    )


def first_lines(source: Path, count: int | None, target: Path) -> Path:
    """`source` itself, or its first `count` lines copied to `target`."""
    if count is None:
        return source
    lines = source.read_text(encoding="utf-8").splitlines()[:count]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def summary(
    pairs: int, tokens: int, runtime: float, accuracy: float, parameters: int, rows: list[dict]
) -> dict:
    return {
        "pairs": pairs,
        "tokens_fed": tokens,
        # every response with its prompt, unpadded: what a padded trainer would feed at best
        "real_tokens": sum(len(ids) for row in rows for ids in row["input_ids"]),
        "train_runtime_s": runtime,
        "pairs_per_s": pairs / runtime,
        "flops": 6 * parameters * tokens / runtime,
        "eval_accuracy": accuracy,
    }


def print_table(results: list[dict], matmul: float) -> None:
    header = (
        f"{'backbone':<14}{'data':<5}{'trainer':<13}{'seed':>5}{'pairs':>6}{'pairs/s':>9}"
        f"{'speedup':>9}{'tokens fed':>12}{'real tokens':>12}{'peak RSS':>10}{'peak GPU':>10}"
        f"{'dev acc':>9}{'FLOP/s':>9}"
    )
    print(header)
    print("-" * len(header))
    baseline = {
        (r["row"], r["data"], r["seed"]): r["pairs_per_s"] for r in results if r["trainer"] == "trl"
    }
    for r in results:
        trl = baseline.get((r["row"], r["data"], r["seed"]))
        speedup = f"{r['pairs_per_s'] / trl:>8.2f}x" if trl else f"{'-':>9}"
        gpu = f"{r['peak_gpu_gib']:>8.2f}Gi" if r.get("peak_gpu_gib") is not None else f"{'-':>10}"
        print(
            f"{r['row']:<14}{r['data']:<5}{r['trainer']:<13}{r['seed']:>5}{r['pairs']:>6}"
            f"{r['pairs_per_s']:>9.3f}{speedup}{r['tokens_fed']:>12,}"
            f"{r['real_tokens']:>12,}{r['peak_rss_gib']:>8.2f}Gi{gpu}"
            f"{r['eval_accuracy']:>9.3f}{r['flops'] / matmul:>8.0%}"
        )
    print("FLOP/s: 6 x non-embedding params x tokens fed / time, as a share of the matmul rate.")
    runs: dict[tuple[str, str, str], list[float]] = {}
    for r in results:
        runs.setdefault((r["row"], r["data"], r["trainer"]), []).append(r["eval_accuracy"])
    for (row, data, trainer), accuracies in runs.items():
        if len(accuracies) > 1:
            mean = sum(accuracies) / len(accuracies)
            print(
                f"{row} {data} {trainer}: mean dev accuracy {mean:.3f} over {len(accuracies)} seeds"
            )


if __name__ == "__main__":
    main()
