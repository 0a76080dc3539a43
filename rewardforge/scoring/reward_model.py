"""`RewardModel`: load a trained reward model and score, compare or rank responses."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from rewardforge.adoption.resolve import ResolvedRewardModel, resolve_reward_model
from rewardforge.data.example import PreferenceExample, Prompt
from rewardforge.errors import UserError
from rewardforge.forward.architecture import default_device, use_plan_attention
from rewardforge.forward.plan import ForwardPlan, TokenCount
from rewardforge.forward.reward_forward import RewardForward
from rewardforge.forward.steps import sigmoid
from rewardforge.models.reward_head import load_trained_reward_model
from rewardforge.models.verdict_head import load_judge_model
from rewardforge.recipe import EncodedGroup, EncodedResponse, RecipeEncoder, ScoringRecipe
from rewardforge.recipe.families import reads_token_classifier
from rewardforge.recipe.steps import EncodedSolutions, encode_solution
from rewardforge.scoring.step_aggregates import Aggregate, aggregate, solution_steps


class RewardModel:
    """A trained reward model with the scoring recipe it was trained with.

    Every method formats text through the saved recipe, so rewards match training exactly.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        encoder: RecipeEncoder,
        max_tokens_per_batch: int = 16384,
    ) -> None:
        self.model = model.eval()
        self.encoder = encoder
        self.reward_forward = RewardForward(model)
        self.plan = ForwardPlan.for_model(self.reward_forward, encoder)
        self.max_tokens_per_batch = max_tokens_per_batch
        self.aggregate: Aggregate = "min"  # a process reward model's reward from its steps
        self.tokens = TokenCount()  # what this model has read, and been fed

    @classmethod
    def load(
        cls,
        directory: str | Path,
        device: str | None = None,
        reward_format: str | None = None,
        template: str | None = None,
        aggregate: Aggregate = "min",
        dtype: str | None = None,
    ) -> RewardModel:
        """Load a reward model: a folder written by `rewardforge train` or `adopt`, or one
        trained elsewhere (TRL, OpenRLHF, Skywork, POLAR and InternLM2 reward models, encoder
        pair classifiers, PRMs saved by TRL's PRMTrainer; see docs/reward-models.md). How a
        model trained elsewhere scores is detected from its files, or named by `reward_format`,
        and said in one line. `aggregate` is how a process reward model's step probabilities
        make one reward. `dtype` (float32, bfloat16, float16) is what the model computes in:
        by default float32 on a CPU and the checkpoint's own dtype on a GPU."""
        resolved = resolve_reward_model(directory, reward_format, template)
        return cls.load_resolved(resolved, directory, device, aggregate, dtype)

    @classmethod
    def load_resolved(
        cls,
        resolved: ResolvedRewardModel,
        directory: str | Path,
        device: str | None = None,
        aggregate: Aggregate = "min",
        dtype: str | None = None,
    ) -> RewardModel:
        """Load the weights of a model `resolve_reward_model` found at `directory`. A command
        resolves first (cheap: the folder's files and recipe), checks its input against the
        recipe, and only then loads, so a mistake is refused before anything slow."""
        device = device or default_device()
        if resolved.recipe.judge is not None:  # a verdict judge: its verdict logits' head
            model = load_judge_model(resolved.folder, resolved.recipe, dtype, device)
        else:
            model = load_trained_reward_model(
                resolved.folder,
                token_classifier=reads_token_classifier(resolved.recipe),
                key_mapping=resolved.key_mapping,
                dtype=dtype,
                device=device,
            )
        if resolved.summary is not None:
            print(
                f"{directory}: scoring as {resolved.summary}, in {_dtype_name(model)}",
                file=sys.stderr,
            )
        tokenizer = AutoTokenizer.from_pretrained(resolved.folder)
        recipe = resolved.recipe
        use_plan_attention(model, is_encoder=recipe.template == "pair", device=device)
        model.to(device)
        loaded = cls(model, RecipeEncoder(recipe, tokenizer))
        loaded.aggregate = aggregate
        return loaded

    @property
    def recipe(self) -> ScoringRecipe:
        return self.encoder.recipe

    @property
    def is_process(self) -> bool:
        """Whether this is a process reward model (a reward per step of a solution)."""
        return self.recipe.kind == "process"

    def score_steps(
        self,
        prompts: Sequence[Prompt],
        solutions: Sequence[Sequence[str]],
        progress: bool = False,
    ) -> list[list[float]]:
        """Each solution's step probabilities of being correct (a process reward model).

        Solutions to the same prompt are read in one forward, sharing the prompt's tokens.
        """
        if not self.is_process:
            raise UserError(
                "score_steps needs a process reward model; this one gives one reward per "
                "response. Train one on step-labelled rows (docs/process-rewards.md)."
            )
        if len(prompts) != len(solutions):
            raise UserError("score_steps needs one prompt per solution.")
        encoded = [encode_solution(self.encoder, p, list(s)) for p, s in zip(prompts, solutions)]
        return self.score_encoded_steps(encoded, progress)

    def score_encoded_steps(
        self, encoded: Sequence[EncodedResponse], progress: bool = False
    ) -> list[list[float]]:
        """Step probabilities of solutions already encoded (`encode_solution`), in order.
        A decoder reads solutions that open with the same prompt tokens as one group, sharing
        them; an encoder (no shared prompt) reads each solution as its own."""
        groups: dict[tuple[int, ...] | int, list[int]] = {}
        for index, solution in enumerate(encoded):
            length = solution.prompt_length
            groups.setdefault(tuple(solution.input_ids[:length]) if length else index, []).append(
                index
            )
        rows = [
            EncodedSolutions([encoded[i] for i in indices], [[] for _ in indices]).as_row()
            for indices in groups.values()
        ]
        logits = self._score_rows(rows, progress, unit="problem")
        results: list[list[float]] = [[] for _ in encoded]
        for indices, problem in zip(groups.values(), logits):
            for index, steps in zip(indices, problem):
                results[index] = [sigmoid(value) for value in steps]
        return results

    def _score_as_steps(
        self,
        prompts: Sequence[Prompt],
        responses: Sequence[str],
        references: Sequence[str] | None,
        normalize: bool,
        progress: bool,
    ) -> list[float]:
        if references is not None or normalize:
            raise UserError(
                "a process reward model scores steps as probabilities: it takes no reference "
                "and no --normalize."
            )
        separator = self.recipe.step_separator
        solutions = [solution_steps(text, separator) for text in responses]
        step_probabilities = self.score_steps(prompts, solutions, progress)
        return [aggregate(steps, self.aggregate) for steps in step_probabilities]

    @property
    def reference_mode(self) -> bool:
        """Whether this model scores responses against reference answers (POLAR-style)."""
        return self.recipe.reference_mode

    def score(
        self,
        prompts: Sequence[Prompt],
        responses: Sequence[str],
        references: Sequence[str] | None = None,
        normalize: bool = False,
        progress: bool = False,
    ) -> list[float]:
        """One reward per (prompt, response); normalised with the stored mean/std if asked.

        A reference-based model needs `references`, one per response; other models refuse them.
        A process reward model cuts each response into steps at its separator and gives the
        `aggregate` of their probabilities (`score_steps` gives every step's).
        """
        if self.is_process:
            return self._score_as_steps(prompts, responses, references, normalize, progress)
        if references is None:
            references = [None] * len(responses)
        if not len(prompts) == len(responses) == len(references):
            raise UserError(
                f"score() needs one prompt and one reference (if any) per response; got "
                f"{len(prompts)} prompts, {len(references)} references and {len(responses)} "
                "responses."
            )
        encoded = [
            self.encoder.encode(prompt, response, reference)
            for prompt, response, reference in zip(prompts, responses, references)
        ]
        return self.score_encoded(encoded, normalize=normalize, progress=progress)

    def score_encoded(
        self,
        encoded: Sequence[EncodedResponse],
        normalize: bool = False,
        progress: bool = False,
    ) -> list[float]:
        """One reward per response already encoded with `self.encoder`, in the same order.

        Where the plan shares prompts (decoders), responses to the same prompt tokens are read
        as one group, so the prompt is fed once for all of them, as in training."""
        groups = self._prompt_groups(encoded)
        rows = [EncodedGroup([encoded[index] for index in group]).as_row() for group in groups]
        rewards = [0.0] * len(encoded)
        for group, values in zip(groups, self._score_rows(rows, progress, unit="response")):
            for index, value in zip(group, values):
                rewards[index] = value
        return [self.recipe.normalize(r) for r in rewards] if normalize else rewards

    def _prompt_groups(self, encoded: Sequence[EncodedResponse]) -> list[list[int]]:
        """Indexes of `encoded` gathered by their prompt tokens, in order of first appearance;
        a group's tokens (the prompt once, then each response's own) stay within one batch's
        budget. Without a shared-prompt plan, or without a prompt, each response is alone."""
        if not self.plan.share_prompt:
            return [[index] for index in range(len(encoded))]
        groups: dict[tuple[int, ...] | int, list[list[int]]] = {}
        sizes: dict[tuple[int, ...] | int, int] = {}
        for index, response in enumerate(encoded):
            length = response.prompt_length
            key = tuple(response.input_ids[:length]) if length else index
            own = len(response.input_ids) - length
            if key not in groups or sizes[key] + own > self.max_tokens_per_batch:
                groups.setdefault(key, []).append([])
                sizes[key] = length
            groups[key][-1].append(index)
            sizes[key] += own
        return sorted((g for chunks in groups.values() for g in chunks), key=lambda g: g[0])

    def score_examples(
        self, examples: Sequence[PreferenceExample], progress: bool = False
    ) -> list[list[float]]:
        """Rewards for every response of every example, best-labelled response first (a
        process reward model's: the aggregate of each response's steps)."""
        if self.is_process:
            prompts = [example.prompt for example in examples for _ in example.responses]
            responses = [response for example in examples for response in example.responses]
            flat = iter(self.score(prompts, responses, progress=progress))
            return [[next(flat) for _ in example.responses] for example in examples]
        rows = [self.encoder.encode_example(example).as_row() for example in examples]
        return self._score_rows(rows, progress)

    def compare(
        self, prompt: Prompt, response_a: str, response_b: str, reference: str | None = None
    ) -> float:
        """Probability that `response_a` is preferred over `response_b` (Bradley-Terry)."""
        references = None if reference is None else [reference, reference]
        reward_a, reward_b = self.score([prompt, prompt], [response_a, response_b], references)
        return 1.0 / (1.0 + math.exp(reward_b - reward_a))

    def rank(
        self, prompt: Prompt, candidates: Sequence[str], reference: str | None = None
    ) -> list[tuple[int, float]]:
        """(candidate index, reward) pairs, best first."""
        references = None if reference is None else [reference] * len(candidates)
        rewards = self.score([prompt] * len(candidates), list(candidates), references)
        return sorted(enumerate(rewards), key=lambda item: -item[1])

    def reward_function(self, normalize: bool = False) -> Callable[..., list[float]]:
        """A reward function for TRL's GRPO and RLOO trainers (`reward_funcs=[...]`).

        TRL calls it with the policy's prompts and completions, as text or as chat messages.
        They are rendered with this model's own recipe, not the policy's template, so the
        reward is the one the model was trained to give whatever the policy's tokenizer.
        """
        return trl_reward_function(
            lambda prompts, texts, references: self.score(prompts, texts, references, normalize)
        )

    def _score_rows(self, rows: list[dict], progress: bool, unit: str = "group") -> list[list[Any]]:
        self.tokens.add(self.plan, rows)
        return self.plan.score(
            self.reward_forward, rows, self.max_tokens_per_batch, progress=progress, unit=unit
        )


def recipe_before_loading(
    model: str | Path | RewardModel, reward_format: str = "auto", template: str | None = None
) -> tuple[ScoringRecipe, ResolvedRewardModel | None]:
    """The recipe `model` scores under, with no weights loaded: a loaded model's own, or a
    folder's as `resolve_reward_model` finds it (returned too, for `RewardModel.load_resolved`
    once the input has been checked against the recipe)."""
    if isinstance(model, RewardModel):
        return model.recipe, None
    resolved = resolve_reward_model(model, reward_format, template)
    return resolved.recipe, resolved


def _dtype_name(model: torch.nn.Module) -> str:
    return str(next(model.parameters()).dtype).removeprefix("torch.")


Scorer = Callable[[list[Prompt], list[str], list[str] | None], list[float]]
# The dataset column that carries each prompt as its file wrote it (text or messages, as JSON)
# to the reward function; TRL hands the policy's own form of the prompt in `prompts`.
REWARD_PROMPT_COLUMN = "reward_prompt"


def encode_reward_prompt(prompt: Prompt) -> str:
    """A prompt as one text value of `REWARD_PROMPT_COLUMN` (a column holds one type)."""
    return json.dumps(prompt, ensure_ascii=False)


def trl_reward_function(score: Scorer) -> Callable[..., list[float]]:
    """Wrap `score(prompts, responses, references)` as a TRL reward function.

    TRL passes the dataset's other columns along with the prompts and completions. Where the
    dataset has `REWARD_PROMPT_COLUMN`, the reward model reads those prompts, as the prompt file
    wrote them, rather than the policy's rendering; a reference-based model reads each prompt's
    reference answer from the `reference` column.
    """

    def rewardforge_reward(
        prompts: Sequence[Prompt],
        completions: Sequence[str | list[dict]],
        reference: Sequence[str] | None = None,
        reward_prompt: Sequence[str] | None = None,
        **_: object,
    ) -> list[float]:
        texts = [_completion_text(completion) for completion in completions]
        if reward_prompt is not None:
            prompts = [json.loads(prompt) for prompt in reward_prompt]
        return score(list(prompts), texts, None if reference is None else list(reference))

    return rewardforge_reward


def _completion_text(completion: str | list[dict]) -> str:
    """A completion's text: TRL passes a string, or for chat data a list of assistant messages."""
    if isinstance(completion, str):
        return completion
    return "".join(message["content"] for message in completion)
