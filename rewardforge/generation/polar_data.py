"""`polar_data()`: policy-discrimination pairs for pre-training a reference-based reward model.

POLAR's first stage needs no human labels. A pool of policies (different models, or one model
with different sampling settings and system prompts) answers the same prompts; for a reference
answer from policy P, another answer from P must outscore an answer from a different policy Q.
Each prompt gives rows `{"prompt", "reference", "chosen", "rejected", "category": "P vs Q"}`
that `rewardforge train --reference-mode` reads as they are.

Answers are appended to `answers.jsonl` as each (policy, prompt) is done, so an interrupted run
resumes where it stopped; answers made under other settings (of a policy, the answers per
policy, the seed) are not reused.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError
from tqdm.auto import tqdm

from rewardforge.data.appended_rows import append_rows, read_appended_rows
from rewardforge.data.conversation import prompt_as_messages
from rewardforge.data.example import Prompt
from rewardforge.data.prompt_rows import read_prompts
from rewardforge.errors import UserError
from rewardforge.generation.config import PolarDataSettings
from rewardforge.models.policy import Policy, SamplingSettings

ANSWERS_FILE = "answers.jsonl"
TRAIN_FILE = "train.jsonl"
HELDOUT_FILE = "heldout.jsonl"
PROMPTS_PER_CALL = 8  # prompts a policy answers in one generate call (left-padded together)
RUN_SETTINGS = ("answers_per_policy", "seed")  # besides the policy's, they change the answers


@dataclass(frozen=True)
class PoolPolicy:
    """One policy of the pool: a causal LM, its system prompt and its sampling settings."""

    name: str
    model: str = "smollm2-135m"
    system: str | None = None
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 64


@dataclass
class PolarDataReport:
    """What a run generated and wrote."""

    prompts: int
    answers_generated: int
    answers_reused: int
    train_pairs: int
    heldout_pairs: int
    output_dir: Path


def read_pool(path: str | Path) -> list[PoolPolicy]:
    """The policies of a YAML (or JSON) file: a list of mappings with `PoolPolicy`'s keys."""
    try:
        entries = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML ({error}).") from error
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{path}: the pool must be a list of policies, e.g. '- name: terse'.")
    known = {spec.name for spec in fields(PoolPolicy)}
    pool = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise UserError(f"{path}: policy {number} needs a 'name'.")
        unknown = sorted(set(entry) - known)
        if unknown:
            raise UserError(
                f"{path}: policy {number} has unknown key(s) {unknown}; known: {sorted(known)}."
            )
        try:
            pool.append(TypeAdapter(PoolPolicy).validate_python(entry))
        except ValidationError as error:
            problem = error.errors()[0]
            key = ".".join(str(part) for part in problem["loc"])
            reason = problem["msg"][0].lower() + problem["msg"][1:]
            raise UserError(
                f"{path}: policy {number}: {key!r}: {reason}, got {problem['input']!r}."
            ) from None
    return pool


def polar_data(
    pool: str | Path | list[PoolPolicy],
    prompts_path: str | Path,
    output_dir: str | Path,
    *,
    answers_per_policy: int = 2,
    heldout_fraction: float = 0.2,
    seed: int = 0,
    progress: bool = True,
) -> PolarDataReport:
    """Generate answers from every policy of `pool` and write policy-discrimination pairs.

    Writes `answers.jsonl` (resumable), and `train.jsonl` and `heldout.jsonl`, split by prompt
    (`heldout_fraction` of the prompts, chosen at random with `seed`), so that held-out
    accuracy measures discrimination on prompts the model never saw.
    """
    policies = pool if isinstance(pool, list) else read_pool(pool)
    _check(policies, answers_per_policy, heldout_fraction)
    numbered = read_prompts(prompts_path)  # (line, prompt)
    prompts = [prompt for _, prompt in numbered]
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    answers = _read_answers(output / ANSWERS_FILE)
    run = dict(zip(RUN_SETTINGS, (answers_per_policy, seed)))

    def key(policy: PoolPolicy, prompt: Prompt) -> str:
        return _answer_key(asdict(policy), prompt, run)

    todo = [
        (
            policy,
            [(line, prompt) for line, prompt in numbered if key(policy, prompt) not in answers],
        )
        for policy in policies
    ]
    batches = [
        (policy, pending[start : start + PROMPTS_PER_CALL])
        for policy, pending in todo
        for start in range(0, len(pending), PROMPTS_PER_CALL)
    ]
    generated = sum(len(pending) for _, pending in todo)
    loaded: dict[str, Policy] = {}
    with (
        (output / ANSWERS_FILE).open("a", encoding="utf-8") as out,
        tqdm(total=generated, desc="Generating", unit="answer set", disable=not progress) as bar,
    ):
        for policy, batch in batches:
            if policy.model not in loaded:
                loaded[policy.model] = Policy.load(policy.model)
            first_line = batch[0][0]
            sampling = SamplingSettings(
                policy.max_new_tokens, policy.temperature, policy.top_p, seed + first_line
            )
            texts = loaded[policy.model].sample_batch(
                [_with_system(prompt, policy.system) for _, prompt in batch],
                answers_per_policy,
                sampling,
            )
            rows = [
                {"prompt": prompt, "policy": asdict(policy), **run, "answers": answer_set}
                for (_, prompt), answer_set in zip(batch, texts)
            ]
            append_rows(out, rows)
            for row in rows:
                answers[key(policy, row["prompt"])] = row["answers"]
            bar.update(len(batch))

    heldout_count = round(len(prompts) * heldout_fraction)
    heldout = set(random.Random(seed).sample(range(len(prompts)), heldout_count))
    splits: dict[str, list[dict[str, Any]]] = {TRAIN_FILE: [], HELDOUT_FILE: []}
    for index, prompt in enumerate(prompts):
        by_policy = {policy.name: answers[key(policy, prompt)] for policy in policies}
        split = HELDOUT_FILE if index in heldout else TRAIN_FILE
        splits[split] += discrimination_pairs(prompt, by_policy)
    for name, rows in splits.items():
        (output / name).write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
        )
    return PolarDataReport(
        prompts=len(prompts),
        answers_generated=generated,
        answers_reused=len(policies) * len(prompts) - generated,
        train_pairs=len(splits[TRAIN_FILE]),
        heldout_pairs=len(splits[HELDOUT_FILE]),
        output_dir=output,
    )


def discrimination_pairs(prompt: Prompt, answers: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Rows for one prompt: P's first answer is the reference, each further answer of P is
    chosen over an answer of every other policy Q. Pairs with an empty or identical answer are
    left out (they teach nothing)."""
    rows = []
    for name, (reference, *same_policy) in answers.items():
        for other, other_answers in answers.items():
            if other == name:
                continue
            for number, chosen in enumerate(same_policy):
                rejected = other_answers[number % len(other_answers)]
                if reference and chosen and rejected and chosen != rejected:
                    rows.append(
                        {
                            "prompt": prompt,
                            "reference": reference,
                            "chosen": chosen,
                            "rejected": rejected,
                            "category": f"{name} vs {other}",
                        }
                    )
    return rows


def _check(policies: list[PoolPolicy], answers_per_policy: int, heldout_fraction: float) -> None:
    names = [policy.name for policy in policies]
    if len(set(names)) < 2 or len(set(names)) < len(names):
        raise UserError(f"The pool needs two or more policies with distinct names; got {names}.")
    if answers_per_policy < 2:
        raise UserError(
            "--answers-per-policy must be at least 2: one answer of a policy is the reference, "
            "another is compared with it."
        )
    if not 0 <= heldout_fraction < 1:
        raise UserError(f"--heldout must be in [0, 1), got {heldout_fraction}.")
    for policy in policies:
        if not policy.temperature > 0 or not 0 < policy.top_p <= 1:
            raise UserError(
                f"policy {policy.name!r}: temperature must be above 0 and top_p in (0, 1]; "
                "answers are sampled."
            )


def _with_system(prompt: Prompt, system: str | None) -> Prompt:
    if system is None:
        return prompt
    messages = prompt_as_messages(prompt)
    return [{"role": "system", "content": system}, *messages]


def _answer_key(policy: dict[str, Any], prompt: Prompt, run: dict[str, Any]) -> str:
    """What decides an answer set: the policy's settings, the prompt, the answers per policy and
    the seed."""
    return json.dumps([policy, prompt, run], ensure_ascii=False, sort_keys=True)


def _read_answers(path: Path) -> dict[str, list[str]]:
    """Answers of earlier runs by what decided them (rows without the run's settings, from an
    older rewardforge, match nothing and are made again)."""
    return {
        _answer_key(
            row["policy"],
            row["prompt"],
            {name: row.get(name) for name in RUN_SETTINGS},
        ): row["answers"]
        for row in read_appended_rows(path)
    }


def polar_data_with(settings: PolarDataSettings) -> PolarDataReport:
    """`rewardforge polar-data`: `polar_data` as its settings say."""
    return polar_data(
        settings.pool,
        settings.prompts,
        settings.output,
        answers_per_policy=settings.answers_per_policy,
        heldout_fraction=settings.heldout,
        seed=settings.seed,
    )
