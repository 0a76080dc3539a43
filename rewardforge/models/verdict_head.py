"""A verdict judge (a causal language model) loaded as a two-output reward classifier.

The judge's reward is a difference of two next-token logits at the start of its reply:
`logit(yes) - logit(no)` for one answer, `logit(first) - logit(second)` for two. Both are linear
in the last hidden state, through the difference of two rows of the language-model head. So the
judge loads as transformers' sequence classifier for its architecture, with those two
differences as the rows of its `score` layer, and every command that reads a reward model reads
it, through the same forward plan: one forward pass, no generation, no vocabulary-sized logits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from rewardforge.errors import UserError
from rewardforge.models.reward_head import quiet_load_report, scoring_dtype
from rewardforge.recipe.judge_render import verdict_token_ids
from rewardforge.recipe.scoring_recipe import ScoringRecipe

VERDICT_OUTPUTS = ("pointwise", "pairwise")  # the score rows: yes - no, first - second


def load_judge_model(
    folder: Path, recipe: ScoringRecipe, dtype: str | None, device: str
) -> PreTrainedModel:
    """The verdict judge at `folder` as `load_judge_classifier` makes it, its verdict words
    read from `recipe`; `dtype` None computes as any reward model does (float32 on a CPU)."""
    assert recipe.judge is not None
    if recipe.judge.style == "reasoning":
        raise UserError(
            f"{folder} is a reasoning judge: it writes a verdict on two answers and gives no "
            "reward to one. Evaluate it with `rewardforge eval`, or ask it with "
            "Judge.load(folder).judge_pairs."
        )
    ids = verdict_token_ids(AutoTokenizer.from_pretrained(folder), recipe.judge)
    torch_dtype = scoring_dtype(device) if dtype is None else getattr(torch, dtype)
    return load_judge_classifier(folder, ids, torch_dtype)


def load_judge_classifier(
    folder: str | Path, verdict_ids: Sequence[int], dtype: torch.dtype | str
) -> PreTrainedModel:
    """The judge at `folder` (safetensors only) as a sequence classifier whose two outputs are
    the log-odds of its verdicts; `verdict_ids` are the first tokens of yes, no, first, second.
    """
    with quiet_load_report():  # the LM head is unused and `score` is new: both expected
        model = AutoModelForSequenceClassification.from_pretrained(
            folder, num_labels=2, dtype=dtype, use_safetensors=True
        )
    config = model.config
    if getattr(config, "final_logit_softcapping", None) or not hasattr(model, "score"):
        raise UserError(
            f"{folder}: a {config.model_type} judge's verdict logits are not a linear read of "
            "its last hidden state, so it cannot be read in one pass here; use a Llama-, "
            "Qwen- or Mistral-style decoder."
        )
    rows = lm_head_rows(Path(folder), model, verdict_ids).to(model.score.weight)
    scale = getattr(config, "logit_scale", None) or 1.0  # Cohere multiplies its logits
    yes, no, first, second = rows * scale
    with torch.no_grad():
        model.score.weight.copy_(torch.stack([yes - no, first - second]))
    return model


def lm_head_rows(folder: Path, model: PreTrainedModel, token_ids: Sequence[int]) -> torch.Tensor:
    """Rows `token_ids` of the language-model head: the input embeddings when the two are
    tied, else `lm_head.weight` read from the safetensors file that holds it."""
    if getattr(model.config, "tie_word_embeddings", False):
        return model.get_input_embeddings().weight[list(token_ids)].detach().float()
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        files = {name: folder / shard for name, shard in weight_map.items()}
    else:
        files = {}
        for path in folder.glob("*.safetensors"):
            with safe_open(str(path), framework="pt") as weights:
                files.update(dict.fromkeys(weights.keys(), path))
    key = next((name for name in files if name.endswith("lm_head.weight")), None)
    if key is None:
        raise UserError(
            f"{folder} has no lm_head.weight and does not tie it to its embeddings: it is not "
            "a language model, so it cannot be a judge."
        )
    with safe_open(str(files[key]), framework="pt") as weights:
        return weights.get_tensor(key)[list(token_ids)].float()
