"""The `rewardforge` command line: a thin layer that parses flags and calls the API."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardforge.api.policy_tuning_config import DPORunConfig, SFTRunConfig
from rewardforge.api.rlhf_config import RLHFConfig
from rewardforge.config_fields import help_text, settings_from_sources
from rewardforge.training.config import TrainConfig

app = typer.Typer(
    help="Train, evaluate and use reward models for RLHF.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

ModelDir = Annotated[Path, typer.Option(help="Directory written by `rewardforge train`.")]


def _signature(config_class: type, *leading: inspect.Parameter) -> inspect.Signature:
    """A command's flags: `leading` ones, then one per field of `config_class` with its help.

    Every flag defaults to None, meaning 'not given', so that a --config YAML value is not
    overridden by a default.
    """
    keyword = inspect.Parameter.KEYWORD_ONLY
    types = typing.get_type_hints(config_class)
    parameters = list(leading)
    for spec in dataclasses.fields(config_class):
        kind = _FLAG_TYPES.get(spec.name, types[spec.name])
        option = typer.Option(*spec.metadata["flags"], help=help_text(spec), show_default=False)
        annotation = Annotated[kind | None, option]
        parameters.append(
            inspect.Parameter(spec.name, keyword, default=None, annotation=annotation)
        )
    return inspect.Signature(parameters)


_CONFIG_FILE = inspect.Parameter(
    "config",
    inspect.Parameter.KEYWORD_ONLY,
    default=None,
    annotation=Annotated[
        Path | None, typer.Option(help="YAML file with any of these settings; flags win over it.")
    ],
)
# Settings whose flag takes text that the command parses (the dict and list that YAML gives).
_FLAG_TYPES: dict[str, Any] = {"columns": str, "lora_target_modules": str}


def _config_command(name: str, config_class: type) -> Callable[[Callable], Callable]:
    """Register a command taking `--config FILE` and one flag per field of `config_class`."""

    def register(command: Callable) -> Callable:
        command.__signature__ = _signature(config_class, _CONFIG_FILE)
        return app.command(name)(command)

    return register


def _settings(config_class: type, config_file: Path | None, flags: dict[str, Any]) -> Any:
    """The command's config: YAML file, then the flags given; a bad value exits with one line."""
    return _or_exit(lambda: config_class(**settings_from_sources(config_class, config_file, flags)))


@_config_command("train", TrainConfig)
def train_command(config: Path | None = None, **flags: Any) -> None:
    """Train a reward model on preference pairs and save it to --output."""
    from rewardforge.api.train import train
    from rewardforge.data.sample import sample_paths

    flags["columns"] = _parse_columns(flags["columns"])
    if flags["lora_target_modules"]:
        flags["lora_target_modules"] = flags["lora_target_modules"].split(",")
    settings = _settings(TrainConfig, config, flags)
    if not settings.data:
        settings.data, default_eval = map(lambda p: [p], sample_paths())
        settings.eval_data = settings.eval_data or default_eval
        typer.echo("No --data given: training on the bundled HH-RLHF harmless sample.")
    result = _or_exit(lambda: train(settings))
    if not _is_main_process():
        return
    if "eval_accuracy" in result.metrics:
        typer.echo(f"eval accuracy: {result.metrics['eval_accuracy']:.4f}")
    typer.echo(
        f"trained {result.metrics['train_pairs']} pairs in {result.metrics['train_runtime_s']:.1f}s"
        f" ({result.metrics['pairs_per_s']:.2f} pairs/s); saved to {result.output_dir}"
    )


@app.command("eval")
def eval_command(
    model: ModelDir,
    data: Annotated[list[str], typer.Option(help="Preference data file (repeatable).")],
    report: Annotated[
        Path | None, typer.Option(help="Write metrics.json, plots and report.html here.")
    ] = None,
    compare: Annotated[
        Path | None, typer.Option(help="A second model directory to evaluate side by side.")
    ] = None,
    columns: Annotated[str | None, typer.Option(help="Key mapping, e.g. prompt=q.")] = None,
    skip_invalid: Annotated[bool, typer.Option(help="Skip bad rows, counted.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Evaluate a reward model: accuracy with a 95% interval, categories, best-of-N, length
    bias, calibration; --report writes plots and report.html, --compare a second model."""
    from rewardforge.api.evaluate import compare as compare_models
    from rewardforge.api.evaluate import evaluate
    from rewardforge.evaluation.report import terminal_table

    options = {
        "columns": _parse_columns(columns),
        "skip_invalid": skip_invalid,
        "progress": not as_json,
        "report_dir": report,
    }
    if compare is None:
        metrics = _or_exit(lambda: evaluate(model, data, **options))
        reports = {model.name: metrics}
    else:
        metrics = _or_exit(lambda: compare_models(model, compare, data, **options))
        reports = metrics["models"]
    if as_json:
        typer.echo(json.dumps(metrics, ensure_ascii=False))
        return
    typer.echo(terminal_table(reports))
    if compare is not None:
        typer.echo(f"disagreements: {len(metrics['disagreements'])} examples")
        _print_rank_changes(metrics["rank_changes"], metrics["preferred_first"])
    if report is not None:
        typer.echo(f"report: {report / 'report.html'}")


SHOWN_RANK_CHANGES = 20


def _print_rank_changes(changes: list[dict[str, Any]], preferred_first: dict[str, float]) -> None:
    """Each example's candidates with both models' rewards and ranks, as terminal tables."""
    from rich.console import Console
    from rich.table import Table

    from rewardforge.recipe import messages_to_transcript

    console = Console()
    first, second = preferred_first
    for example in changes[:SHOWN_RANK_CHANGES]:
        prompt = example["prompt"]
        prompt = prompt if isinstance(prompt, str) else messages_to_transcript(prompt).strip()
        table = Table(title=f"{example['source']}: {prompt[:80]}", title_justify="left")
        for column in ("candidate (labelled best first)", first, second, "rank", "change"):
            table.add_column(column, overflow="fold")
        for candidate in example["candidates"]:
            ranks, rewards = candidate["ranks"], candidate["rewards"]
            change = candidate["rank_change"]
            table.add_row(
                candidate["response"][:60],
                f"{rewards[first]:.4f}",
                f"{rewards[second]:.4f}",
                f"{ranks[first]} -> {ranks[second]}",
                f"{change:+d}" if change else "",
            )
        console.print(table)
    if len(changes) > SHOWN_RANK_CHANGES:
        typer.echo(f"... {len(changes) - SHOWN_RANK_CHANGES} more examples in --report or --json")
    typer.echo(
        "preferred answer ranked first: "
        + ", ".join(f"{label} {share:.2%}" for label, share in preferred_first.items())
        + f" of {len(changes)} examples"
    )


@app.command("score")
def score_command(
    model: ModelDir,
    input: Annotated[Path, typer.Option(help="JSONL rows with prompt+response, or messages.")],
    output: Annotated[Path, typer.Option(help="Where to write the rows with a reward added.")],
    normalize: Annotated[
        bool, typer.Option(help="Rewards as (r - mean) / std of the training rewards.")
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option(help="Write bad rows to a rejects file instead of stopping.")
    ] = False,
    rejects: Annotated[
        Path | None, typer.Option(help="Rejects file (default: OUTPUT.rejects.jsonl).")
    ] = None,
) -> None:
    """Add a `reward` field to every row of a JSONL file, in input order."""
    from rewardforge.api.score import score_file

    report = _or_exit(
        lambda: score_file(
            model,
            input,
            output,
            normalize=normalize,
            skip_invalid=skip_invalid,
            rejects_path=rejects,
        )
    )
    typer.echo(f"scored {report.scored} rows -> {output}")
    if report.rejects_path is not None:
        typer.echo(f"rejected {report.rejected} rows -> {report.rejects_path}")


@app.command("serve")
def serve_command(
    model: ModelDir,
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes it.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option()] = 8000,
    api_key_env: Annotated[
        str | None,
        typer.Option(help="Environment variable holding the API key; requests then need it."),
    ] = None,
    max_batch_items: Annotated[int, typer.Option(help="Responses per model call.")] = 64,
    max_wait_ms: Annotated[
        float, typer.Option(help="How long a request waits for others to batch with.")
    ] = 10.0,
    max_items_per_request: Annotated[int, typer.Option()] = 256,
    max_text_chars: Annotated[int, typer.Option(help="Per item: prompt + response.")] = 32_000,
    max_body_bytes: Annotated[int, typer.Option()] = 8 * 2**20,
    insecure: Annotated[
        bool, typer.Option(help="Allow a non-loopback --host without an API key.")
    ] = False,
) -> None:
    """Serve a reward model over HTTP: /v1/score, /get_reward (OpenRLHF), /health, /metrics."""
    import uvicorn

    from rewardforge.api.reward_model import RewardModel
    from rewardforge.serving.app import ServerSettings, create_app

    api_key = None
    if api_key_env is not None:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            typer.secho(
                f"error: --api-key-env {api_key_env}: that environment variable is empty or "
                "unset. Export the key first, e.g. export RM_KEY=$(openssl rand -hex 16).",
                err=True,
                fg=typer.colors.RED,
            )
            raise typer.Exit(code=2)
    if api_key is None and not insecure and not _is_loopback(host):
        typer.secho(
            f"error: --host {host} lets other machines call the server, and it has no API key. "
            "Pass --api-key-env VAR (and export the key in VAR), or --insecure to serve "
            "without one.",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(code=2)
    settings = ServerSettings(
        api_key=api_key,
        max_batch_items=max_batch_items,
        max_wait_ms=max_wait_ms,
        max_items_per_request=max_items_per_request,
        max_text_chars=max_text_chars,
        max_body_bytes=max_body_bytes,
    )
    reward_model = _or_exit(lambda: RewardModel.load(model))
    uvicorn.run(create_app(reward_model, settings), host=host, port=port)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


PolicyOption = Annotated[
    str, typer.Option(help="Causal LM that writes answers: alias, hub id, dir or .gguf.")
]
MaxNewTokens = Annotated[int, typer.Option(help="Tokens per sampled answer.")]
Temperature = Annotated[float, typer.Option(help="Sampling temperature.")]
TopP = Annotated[float, typer.Option(help="Nucleus sampling mass.")]
Seed = Annotated[int, typer.Option(help="Sampling seed (per prompt: seed + prompt line).")]


@app.command("best-of-n")
def best_of_n_command(
    reward_model: ModelDir,
    prompts: Annotated[Path, typer.Option(help="JSONL rows with prompt or messages.")],
    output: Annotated[Path, typer.Option(help="SFT rows: the top-k answers per prompt.")],
    policy: PolicyOption = "smollm2-135m",
    n: Annotated[int, typer.Option(help="Answers sampled per prompt.")] = 8,
    top_k: Annotated[int, typer.Option(help="Best answers kept per prompt.")] = 1,
    pairs_output: Annotated[
        Path | None, typer.Option(help="Also write best-vs-worst preference pairs here.")
    ] = None,
    max_new_tokens: MaxNewTokens = 128,
    temperature: Temperature = 0.8,
    top_p: TopP = 0.95,
    seed: Seed = 0,
) -> None:
    """Rejection sampling: N answers per prompt, the reward model keeps the best (resumable)."""
    from rewardforge.api.best_of_n import best_of_n
    from rewardforge.models.policy import SamplingSettings

    sampling = SamplingSettings(max_new_tokens, temperature, top_p, seed)
    report = _or_exit(
        lambda: best_of_n(
            policy,
            reward_model,
            prompts,
            output,
            n=n,
            top_k=top_k,
            pairs_output_path=pairs_output,
            sampling=sampling,
        )
    )
    typer.echo(
        f"{report.prompts_done} prompts done ({report.prompts_skipped} already in {output}); "
        f"wrote {report.sft_rows} SFT rows"
        + (f", {report.pair_rows} pairs" if pairs_output else "")
    )


@app.command("polar-data")
def polar_data_command(
    pool: Annotated[
        Path,
        typer.Option(help="YAML list of policies: name, model, system, temperature, top_p, ..."),
    ],
    prompts: Annotated[Path, typer.Option(help="JSONL prompts: {'prompt'} or {'messages'}.")],
    output: Annotated[
        Path, typer.Option(help="Directory for answers.jsonl, train.jsonl and heldout.jsonl.")
    ],
    answers_per_policy: Annotated[
        int, typer.Option(help="Answers per policy and prompt; the first is the reference.")
    ] = 2,
    heldout: Annotated[float, typer.Option(help="Share of prompts kept for heldout.jsonl.")] = 0.2,
    seed: Annotated[
        int, typer.Option(help="Seed of the held-out split and of sampling (plus prompt line).")
    ] = 0,
) -> None:
    """POLAR stage 1: a pool of policies answers the prompts; write pairs where a policy's own
    answer must beat another policy's, for `train --reference-mode` (resumable)."""
    from rewardforge.api.polar_data import polar_data

    report = _or_exit(
        lambda: polar_data(
            pool,
            prompts,
            output,
            answers_per_policy=answers_per_policy,
            heldout_fraction=heldout,
            seed=seed,
        )
    )
    typer.echo(
        f"{report.prompts} prompts: {report.answers_generated} answer sets generated, "
        f"{report.answers_reused} reused; {report.train_pairs} train pairs, "
        f"{report.heldout_pairs} held-out pairs -> {output}"
    )


@app.command("verify")
def verify_command(
    reward_model: ModelDir,
    prompt: Annotated[str, typer.Option(help="The question to answer.")],
    threshold: Annotated[float, typer.Option(help="An answer passes at this reward or above.")],
    policy: PolicyOption = "smollm2-135m",
    max_attempts: Annotated[int, typer.Option(help="Answers generated before the fallback.")] = 3,
    fallback: Annotated[
        str, typer.Option(help="Answer when none passes.")
    ] = "I'm sorry, I can't give a good answer to that.",
    normalized: Annotated[
        bool, typer.Option(help="Threshold on (r - mean) / std instead of the raw reward.")
    ] = False,
    max_new_tokens: MaxNewTokens = 128,
    temperature: Temperature = 0.8,
    top_p: TopP = 0.95,
    seed: Seed = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Generate, score, and return the first answer over the threshold, else the fallback."""
    from dataclasses import asdict, replace

    from rewardforge.api.reward_model import RewardModel
    from rewardforge.api.verifier import Verifier
    from rewardforge.models.policy import Policy, SamplingSettings

    judge = _or_exit(lambda: RewardModel.load(reward_model))
    writer = _or_exit(lambda: Policy.load(policy))
    sampling = SamplingSettings(max_new_tokens, temperature, top_p, seed)
    verifier = _or_exit(lambda: Verifier(judge, threshold, max_attempts, fallback, normalized))
    verdict = verifier(
        prompt,
        lambda text, number: writer.sample(text, 1, replace(sampling, seed=seed + number))[0],
    )
    if as_json:
        typer.echo(
            json.dumps(
                {**asdict(verdict), "used_fallback": verdict.used_fallback}, ensure_ascii=False
            )
        )
        return
    for number, attempt in enumerate(verdict.attempts, start=1):
        mark = "pass" if attempt.accepted else "fail"
        typer.echo(f"attempt {number}: reward {attempt.reward:.4f} [{mark}] {attempt.answer!r}")
    typer.echo(("answer: " if verdict.accepted else "fallback: ") + verdict.answer)


@_config_command("rlhf", RLHFConfig)
def rlhf_command(config: Path | None = None, **flags: Any) -> None:
    """Optimise a policy against a reward model with TRL's GRPO or RLOO; save it to --output."""
    from rewardforge.api.rlhf import rlhf

    settings = _settings(RLHFConfig, config, flags)
    result = _or_exit(lambda: rlhf(settings))
    metrics = result.metrics
    if not _is_main_process():
        return
    if metrics["heldout_reward_before"] is not None:
        typer.echo(
            f"held-out reward: {metrics['heldout_reward_before']:.4f} before, "
            f"{metrics['heldout_reward_after']:.4f} after"
        )
    typer.echo(f"{metrics['steps']} {settings.algo} steps; policy saved to {result.output_dir}")


@_config_command("sft", SFTRunConfig)
def sft_command(config: Path | None = None, **flags: Any) -> None:
    """Fine-tune a policy on demonstrations with TRL's SFTTrainer; save it to --output."""
    from rewardforge.api.policy_tuning import sft

    settings = _settings(SFTRunConfig, config, flags)
    result = _or_exit(lambda: sft(settings))
    _report_policy_run("sft", result.metrics, result.output_dir)


@_config_command("dpo", DPORunConfig)
def dpo_command(config: Path | None = None, **flags: Any) -> None:
    """Tune a policy on preference pairs with TRL's DPOTrainer; save it to --output."""
    from rewardforge.api.policy_tuning import dpo

    settings = _settings(DPORunConfig, config, flags)
    result = _or_exit(lambda: dpo(settings))
    _report_policy_run("dpo", result.metrics, result.output_dir)


def _is_main_process() -> bool:
    """False in the other processes of an `accelerate launch` run, which print nothing."""
    from accelerate import PartialState

    return PartialState().is_main_process


def _report_policy_run(name: str, metrics: dict[str, Any], output: Path) -> None:
    if not _is_main_process():
        return
    typer.echo(
        f"{name}: {metrics['steps']} steps on {metrics['train_examples']} examples, "
        f"loss {metrics['train_loss']:.4f}; saved to {output}"
    )


def _parse_columns(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    mapping = {}
    for item in text.split(","):
        canonical, sep, source = item.partition("=")
        if not sep or not canonical.strip() or not source.strip():
            raise typer.BadParameter(
                f"--columns expects canonical=source pairs like prompt=question, got {item!r}."
            )
        mapping[canonical.strip()] = source.strip()
    return mapping


def _or_exit(action):
    """Run `action`. A user's mistake becomes one line and exit code 2; a bug becomes exit code 1
    with its traceback written to a file whose path is printed. REWARDFORGE_DEBUG=1 re-raises."""
    from rewardforge.errors import UserError

    try:
        return action()
    except (UserError, OSError, ModuleNotFoundError) as error:
        if os.environ.get("REWARDFORGE_DEBUG"):
            raise
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from error
    except Exception as error:
        if os.environ.get("REWARDFORGE_DEBUG"):
            raise
        report = _write_crash_report()
        typer.secho(
            f"internal error: {type(error).__name__}: {error}\n"
            f"This is a bug in rewardforge, not a problem with your input. The full traceback "
            f"is in {report}; please include it when you report the bug.",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(code=1) from error


def _write_crash_report() -> Path:
    """Write the traceback being handled to the cache's crash-reports folder; return its path."""
    import datetime
    import sys
    import tempfile
    import traceback

    from rewardforge.models.backbones import cache_dir

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    text = f"rewardforge {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}"
    for folder in (cache_dir() / "crash-reports", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            report = folder / f"rewardforge-crash-{stamp}-{os.getpid()}.txt"
            report.write_text(text, encoding="utf-8")
            return report
        except OSError:
            continue
    sys.stderr.write(text)  # nowhere writable: print the traceback instead
    return Path("<stderr>")


if __name__ == "__main__":
    app()
