"""A reward function for verl: any rewardforge reward model (a folder, an adopted family, or a
`rewardforge serve` URL) as verl's `custom_reward_function`.

verl hands a reward function the decoded response (`solution_str`), the row's `ground_truth`
and its `extra_info`; the prompt must travel in `extra_info` (`prompt`, or `question` as verl's
own GSM8K preprocessing writes it). A reference-based (POLAR-style) model compares each response
with `extra_info["reference"]`, or with the row's `ground_truth` when the model is loaded here.
The reward model is named by the `reward_model` keyword
(verl's `custom_reward_function.reward_kwargs`) or the `REWARDFORGE_REWARD_MODEL` environment
variable; a server's API key is read from the variable that `reward_api_key_env` names. The
model loads once per process. With verl's `reward_model.reward_manager=batch`, use
`compute_score_batch`, which scores a whole batch in one call (one request to a server).

    custom_reward_function.path=$(python -m rewardforge.policy.verl_reward)
    custom_reward_function.name=compute_score_batch
    +custom_reward_function.reward_kwargs.reward_model=http://rm-host:8000
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

from rewardforge.api_key import api_key_from_env
from rewardforge.errors import UserError
from rewardforge.scoring.remote_reward import RemoteRewardModel, is_url
from rewardforge.scoring.reward_model import RewardModel

MODEL_VARIABLE = "REWARDFORGE_REWARD_MODEL"


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any = None,
    extra_info: dict | None = None,
    **reward_kwargs: Any,
) -> float:
    """The reward of one response (verl's naive reward manager calls this per row)."""
    return compute_score_batch(
        [data_source], [solution_str], [ground_truth], [extra_info], **reward_kwargs
    )[0]


def compute_score_batch(
    data_sources: Sequence[str],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[dict | None],
    *,
    reward_model: str | None = None,
    reward_api_key_env: str | None = None,
    normalize: bool = False,
    **_: Any,
) -> list[float]:
    """The rewards of a batch of responses (verl's batch reward manager)."""
    prompts = [_prompt(info, index) for index, info in enumerate(extra_infos)]
    model = _loaded(reward_model or os.environ.get(MODEL_VARIABLE, ""), reward_api_key_env)
    references = [info.get("reference") if info else None for info in extra_infos]
    if isinstance(model, RewardModel) and model.reference_mode and not any(references):
        references = [None if truth is None else str(truth) for truth in ground_truths]
    wanted = references if all(reference is not None for reference in references) else None
    return model.score(prompts, list(solution_strs), wanted, normalize=normalize)


def _prompt(extra_info: dict | None, index: int) -> Any:
    for key in ("prompt", "question"):
        if extra_info and extra_info.get(key):
            return extra_info[key]
    raise UserError(
        f"row {index} of verl's batch has no prompt: put it in the row's extra_info as "
        "'prompt' (text or chat messages) or 'question', which the reward model reads."
    )


@functools.cache
def _loaded(source: str, api_key_env: str | None) -> RewardModel | RemoteRewardModel:
    if not source:
        raise UserError(
            f"name the reward model: reward_kwargs.reward_model=FOLDER_OR_URL in verl's "
            f"custom_reward_function, or the {MODEL_VARIABLE} environment variable."
        )
    if is_url(source):
        key = api_key_from_env(api_key_env, "reward_api_key_env") if api_key_env else None
        return RemoteRewardModel(source, api_key=key)
    return RewardModel.load(source)


if __name__ == "__main__":
    print(__file__)  # the path verl's custom_reward_function.path takes
