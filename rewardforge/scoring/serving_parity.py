"""Does a deployed reward model give the rewards `score` gives offline? And if not, why?

`check_serving_parity` sends rows to a running server (`rewardforge serve`, or vLLM's and
SGLang's `/classify` as `export --for vllm` says to ask it), scores the same rows offline with
the model's folder, and compares. When they differ, it tries the known ways a deployment goes
wrong, each reproduced offline (an activation applied to the one-logit head, a BOS token
doubled, missing or added, a normalisation on the server's side), and names the one that
explains every served reward.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import httpx

from rewardforge.api_key import api_key_from_env
from rewardforge.data.example import Prompt
from rewardforge.data.loader import invalid_rows_error, row_place
from rewardforge.data.scoring_rows import read_scoring_rows
from rewardforge.errors import UserError
from rewardforge.recipe.encoder import EncodedResponse
from rewardforge.scoring.config import ParitySettings
from rewardforge.scoring.remote_reward import ITEMS_PER_REQUEST, RemoteRewardModel
from rewardforge.scoring.reward_model import RewardModel, recipe_before_loading
from rewardforge.scoring.vllm_export import VllmServing, client_inputs

Rewards = list[float]


@dataclass
class ParityReport:
    """Served against offline rewards, row by row."""

    rows: int
    max_difference: float
    tolerance: float
    differing: list[int] = field(default_factory=list)  # row indexes past the tolerance
    cause: str | None = None  # the known failure that explains the served rewards

    @property
    def matches(self) -> bool:
        return not self.differing


def check_serving_parity(
    model: RewardModel,
    served: Callable[[Sequence[Prompt], Sequence[str]], Rewards],
    prompts: Sequence[Prompt],
    responses: Sequence[str],
    tolerance: float = 1e-4,
) -> ParityReport:
    """Compare `served(prompts, responses)` with `model.score(prompts, responses)`."""
    offline = model.score(prompts, responses)
    remote = served(prompts, responses)
    differences = [abs(a - b) for a, b in zip(offline, remote, strict=True)]
    differing = [index for index, gap in enumerate(differences) if not gap <= tolerance]
    report = ParityReport(len(offline), max(differences, default=0.0), tolerance, differing)
    if differing:
        report.cause = likely_cause(model, prompts, responses, offline, remote, tolerance)
    return report


def likely_cause(
    model: RewardModel,
    prompts: Sequence[Prompt],
    responses: Sequence[str],
    offline: Rewards,
    remote: Rewards,
    tolerance: float,
) -> str | None:
    """The first known failure whose offline reproduction gives every served reward."""
    encoded = [model.encoder.encode(p, r) for p, r in zip(prompts, responses)]
    for cause, reproduce in _known_failures(model, encoded, offline):
        expected = reproduce()
        if expected is not None and all(
            abs(a - b) <= tolerance for a, b in zip(expected, remote, strict=True)
        ):
            return cause
    return _affine(offline, remote)


def _known_failures(
    model: RewardModel, encoded: list[EncodedResponse], offline: Rewards
) -> list[tuple[str, Callable[[], Rewards | None]]]:
    bos = model.encoder.tokenizer.bos_token_id
    starts_with_bos = bos is not None and all(e.input_ids[:1] == [bos] for e in encoded)

    def with_ids(change: Callable[[list[int]], list[int]]) -> Rewards:
        changed = [_with_input_ids(response, change(response.input_ids)) for response in encoded]
        return model.score_encoded(changed)

    recipe = model.recipe
    return [
        (
            "a sigmoid applied to the one-logit head (the server treats the reward model as a "
            "classifier; vLLM's classify and score runners do this unless the activation is "
            "turned off)",
            lambda: [1 / (1 + math.exp(-reward)) for reward in offline],
        ),
        (
            "a softmax over the one-logit head (every reward is 1.0)",
            lambda: [1.0 for _ in offline],
        ),
        (
            "rewards normalised on the server's side only ((r - mean) / std with the stored "
            "training statistics)",
            lambda: [recipe.normalize(reward) for reward in offline],
        ),
        (
            "a BOS token doubled (the chat template writes one and the server's tokenizer "
            "adds another)",
            lambda: with_ids(lambda ids: [bos, *ids]) if starts_with_bos else None,
        ),
        (
            "the BOS token missing (the server tokenizes without the BOS the model was "
            "trained with)",
            lambda: with_ids(lambda ids: ids[1:]) if starts_with_bos else None,
        ),
        (
            "a BOS token added that the model was trained without",
            lambda: (
                (with_ids(lambda ids: [bos, *ids]) if bos is not None else None)
                if not starts_with_bos
                else None
            ),
        ),
    ]


def _with_input_ids(response: EncodedResponse, ids: list[int]) -> EncodedResponse:
    shift = len(ids) - len(response.input_ids)
    types = response.token_type_ids
    if types is not None:
        types = (types[:1] * shift + types) if shift > 0 else types[-shift:]
    return replace(
        response,
        input_ids=ids,
        token_type_ids=types,
        prompt_length=max(0, response.prompt_length + shift),
        step_ends=None,
    )


def _affine(offline: Rewards, remote: Rewards) -> str | None:
    """A served reward that is `a * r + b` of the offline one (perfectly correlated)."""
    if len(offline) < 3:
        return None
    mean_x, mean_y = sum(offline) / len(offline), sum(remote) / len(remote)
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(offline, remote))
    var_x = sum((x - mean_x) ** 2 for x in offline)
    var_y = sum((y - mean_y) ** 2 for y in remote)
    if var_x == 0 or var_y == 0 or cov / math.sqrt(var_x * var_y) < 0.9999:
        return None
    scale = cov / var_x
    shift = mean_y - scale * mean_x
    return (
        f"the served rewards are {scale:.4g} * r + {shift:.4g} of the offline ones: a "
        "normalisation or scaling on one side"
    )


def verify_serving(settings: ParitySettings) -> ParityReport:
    """`rewardforge verify-serving`: the rows of `--data` (or the bundled dev pairs' responses),
    scored offline and by the server at `--url`."""
    prompts, responses = _rows(settings.data, settings.limit)
    key = api_key_from_env(settings.api_key_env, "--api-key-env") if settings.api_key_env else None
    recipe, resolved = recipe_before_loading(
        settings.model, settings.reward_format, settings.template
    )
    if settings.protocol == "vllm" and (recipe.kind == "process" or recipe.reference_mode):
        raise UserError(
            "verify-serving --protocol vllm checks outcome reward models; a process or "
            "reference-based model is checked against `rewardforge serve`."
        )
    model = RewardModel.load_resolved(resolved, settings.model)
    if settings.protocol == "vllm":
        served = vllm_scorer(model, settings.model, settings.url, key, settings.served_model)
    else:
        served = RemoteRewardModel(settings.url, api_key=key).score
    return check_serving_parity(model, served, prompts, responses, settings.tolerance)


def vllm_scorer(
    model: RewardModel,
    folder: str,
    url: str,
    api_key: str | None = None,
    served_model: str | None = None,
) -> Callable[[Sequence[Prompt], Sequence[str]], Rewards]:
    """Rewards from a vLLM server, asked as the folder's `vllm.json` says (`export --for
    vllm`), else as a client that knows only vLLM's defaults asks: the recipe's text, vLLM
    adding the tokenizer's special tokens."""
    serving = VllmServing.read(folder)
    if serving is None:
        pair = model.recipe.template == "pair"
        serving = VllmServing(
            "/score" if pair else "/classify", "text_pair" if pair else "text", None, None, []
        )
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    client = httpx.Client(headers=headers, timeout=300.0)
    value = "score" if serving.endpoint == "/score" else "probs"

    def served(prompts: Sequence[Prompt], responses: Sequence[str]) -> Rewards:
        inputs = client_inputs(model.encoder, prompts, responses, serving.send)
        rewards: Rewards = []
        for start in range(0, len(inputs), ITEMS_PER_REQUEST):
            body = serving.request(inputs[start : start + ITEMS_PER_REQUEST])
            if served_model:
                body["model"] = served_model
            answer = client.post(url.rstrip("/") + serving.endpoint, json=body)
            if answer.status_code != 200:
                raise UserError(
                    f"{url}{serving.endpoint} answered {answer.status_code}: {answer.text[:300]}"
                )
            data = sorted(answer.json()["data"], key=lambda item: item["index"])
            rewards += [float(item[value][0] if value == "probs" else item[value]) for item in data]
        return rewards

    return served


def _rows(data: str | None, limit: int) -> tuple[list[Prompt], list[str]]:
    if data is None:
        from rewardforge.data import load_preferences
        from rewardforge.data.sample import sample_paths

        examples = load_preferences(sample_paths()[1]).examples
        pairs = [(e.prompt, response) for e in examples for response in e.responses]
    else:
        rows, rejected = read_scoring_rows(data)
        if rejected:
            raise invalid_rows_error(
                [f"{row_place(data, item.number)}: {item.error}" for item in rejected],
                "invalid row(s), so nothing was sent. Fix them",
            )
        pairs = [(row.prompt, row.response) for row in rows]
    pairs = pairs[:limit]
    return [prompt for prompt, _ in pairs], [response for _, response in pairs]
