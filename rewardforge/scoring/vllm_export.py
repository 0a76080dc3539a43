"""`rewardforge export --for vllm`: what vLLM needs beside a reward model folder to give the
rewards `score` gives, and how its clients must send text.

vLLM serves a one-output sequence classifier with its pooling runner, but by default applies a
sigmoid to a one-logit head (its rule for `num_labels == 1`), and it tokenizes a request's text
itself, adding the tokenizer's special tokens unless told not to. So the export:

- marks the head a regression in `config.json` (`problem_type`), the setting under which vLLM's
  classify and score runners apply no activation (a sentence-pair encoder also gets
  `sentence_transformers.activation_fn` set to Identity, which vLLM's score runner reads). A
  process reward model keeps the sigmoid: its step rewards are probabilities.
- finds, on sample rows tokenized by the model's own recipe, which request gives vLLM the same
  tokens: the recipe's text with `add_special_tokens` false or true, or, where the text does not
  tokenize back to the same ids, the token ids themselves (vLLM's `input` takes them).
- for a process reward model, finds the token that ends every step and nothing else, so that
  vLLM's STEP pooling returns exactly the step rewards; else a client reads the per-token output
  of `token_classify` at the step ends.
- writes all of it to `vllm.json` beside the weights, with the `vllm serve` command.

What vLLM then returns is proven only on a GPU (vLLM does not run here): docs say untested.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from transformers import AutoTokenizer

from rewardforge.adoption.resolve import resolve_reward_model
from rewardforge.data.example import Prompt
from rewardforge.errors import UserError
from rewardforge.recipe import RecipeEncoder
from rewardforge.recipe.encoder import EncodedResponse
from rewardforge.recipe.families import family, reads_token_classifier
from rewardforge.recipe.steps import encode_solution
from rewardforge.scoring.config import ExportSettings

VLLM_FILE = "vllm.json"
IDENTITY = "torch.nn.modules.linear.Identity"
Send = Literal["text", "token_ids", "text_pair"]


@dataclass
class VllmServing:
    """How vLLM serves this folder and how a client asks it (`vllm.json`)."""

    endpoint: str  # /classify, /score (a sentence pair) or /pooling (token_classify)
    send: Send
    add_special_tokens: bool | None  # what each text request carries (None: ids, no text)
    pooler_config: dict[str, Any] | None
    command: list[str]
    config_changes: dict[str, Any] = field(default_factory=dict)
    reads: str = "one value per input: the raw reward"

    def request(self, inputs: list[Any]) -> dict[str, Any]:
        """The JSON body for these inputs (texts, id lists, or (prompt, response) pairs)."""
        if self.send == "text_pair":
            return {"text_1": [a for a, _ in inputs], "text_2": [b for _, b in inputs]}
        body: dict[str, Any] = {"input": inputs}
        if self.add_special_tokens is not None:
            body["add_special_tokens"] = self.add_special_tokens
        if self.endpoint == "/pooling":
            body["task"] = "token_classify"
        return body

    @classmethod
    def read(cls, folder: str | Path) -> VllmServing | None:
        path = Path(folder) / VLLM_FILE
        if not path.is_file():
            return None
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def client_inputs(
    encoder: RecipeEncoder, prompts: Sequence[Prompt], responses: Sequence[str], send: Send
) -> list[Any]:
    """What a client sends vLLM for each row: the recipe's tokens as text, the ids, or a
    sentence pair's two texts as the recipe renders them."""
    if send == "text_pair":
        return [encoder.render(prompt, response) for prompt, response in zip(prompts, responses)]
    encoded = [encoder.encode(prompt, response) for prompt, response in zip(prompts, responses)]
    if send == "token_ids":
        return [list(item.input_ids) for item in encoded]
    return [_as_text(encoder.tokenizer, item.input_ids) for item in encoded]


def export_for_vllm(settings: ExportSettings) -> VllmServing:
    """Write `vllm.json` (and the `config.json` changes) into the model's folder."""
    if not Path(settings.model).is_dir():
        raise UserError(
            f"{settings.model}: export --for vllm writes into a model folder on this machine; "
            "download a hub model to one first (hf download ID --local-dir DIR)."
        )
    resolved = resolve_reward_model(settings.model, settings.reward_format, settings.template)
    folder = Path(resolved.folder)
    recipe = resolved.recipe
    if family(recipe.family).converted:
        raise UserError(
            f"{settings.model}: a {recipe.family} model is converted to a transformers "
            "classifier when rewardforge loads it; vLLM reads the original with its own "
            "model class (see vLLM's list of reward models), so there is nothing to export."
        )
    if recipe.reference_mode:
        raise UserError(
            f"{settings.model} is reference-based: vLLM's endpoints take no reference answer. "
            "Serve it with `rewardforge serve`."
        )
    if recipe.judge is not None:
        raise UserError(
            f"{settings.model} is a judge: a language model whose reward is read from its "
            "verdict words, which vLLM's classify endpoints do not do. Serve it with "
            "`rewardforge serve`."
        )
    encoder = RecipeEncoder(recipe, AutoTokenizer.from_pretrained(folder))
    if recipe.kind == "process":
        serving = _process_serving(encoder, folder, reads_token_classifier(recipe))
    elif recipe.template == "pair":
        serving = _pair_serving(encoder, folder)
    else:
        serving = _outcome_serving(encoder, folder)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.update(serving.config_changes)
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", "utf-8")
    (folder / VLLM_FILE).write_text(
        json.dumps(asdict(serving), indent=2, ensure_ascii=False) + "\n", "utf-8"
    )
    return serving


def _outcome_serving(encoder: RecipeEncoder, folder: Path) -> VllmServing:
    encoded = [encoder.encode(prompt, response) for prompt, response in _sample_pairs()]
    send, add_special = _text_or_ids(encoder, encoded)
    return VllmServing(
        "/classify",
        send,
        add_special,
        None,
        _command(folder, encoder),
        {"problem_type": "regression"},
    )


def _pair_serving(encoder: RecipeEncoder, folder: Path) -> VllmServing:
    tokenizer = encoder.tokenizer
    for prompt, response in _sample_pairs():
        item = encoder.encode(prompt, response)
        if item.truncated:  # vLLM would cut it its own way
            continue
        first, second = encoder.render(prompt, response)
        if tokenizer(first, second)["input_ids"] != item.input_ids:
            raise UserError(
                "this encoder's (prompt, response) pair does not tokenize back to the recipe's "
                "tokens, so vLLM's /score would read other text. Serve it with "
                "`rewardforge serve`."
            )
    changes = {"problem_type": "regression", "sentence_transformers": {"activation_fn": IDENTITY}}
    command = _command(folder, encoder, convert=False)  # vLLM runs BERT-style classifiers as is
    return VllmServing("/score", "text_pair", None, None, command, changes)


def _process_serving(encoder: RecipeEncoder, folder: Path, two_labels: bool) -> VllmServing:
    from rewardforge.data.sample import prm_sample_paths
    from rewardforge.data.step_loader import load_step_examples

    examples = load_step_examples(prm_sample_paths()[1]).examples[:16]
    encoded = [
        encode_solution(encoder, example.prompt, list(solution.steps))
        for example in examples
        for solution in example.solutions
    ]
    send, add_special = _text_or_ids(encoder, encoded)
    tag = _step_tag(encoded)
    pooler = None if tag is None else {"pooling_type": "STEP", "step_tag_id": tag}
    reads = (
        "P(correct) of each step (STEP pooling: one value a step)"
        if tag is not None
        else "P(correct) at every token: read it at each step's last token"
    )
    if two_labels:
        reads += " (the second of each pair of values)"
    return VllmServing(
        "/pooling", send, add_special, pooler, _command(folder, encoder, pooler), {}, reads
    )


def _text_or_ids(
    encoder: RecipeEncoder, encoded: Sequence[EncodedResponse]
) -> tuple[Send, bool | None]:
    """Text with `add_special_tokens` false (or true) where every sample's text tokenizes back
    to the recipe's ids under it; else the ids themselves."""
    tokenizer = encoder.tokenizer
    encoded = [item for item in encoded if not item.truncated]  # vLLM cuts its own way
    texts = [_as_text(tokenizer, item.input_ids) for item in encoded]
    for add_special in (False, True):
        if all(
            tokenizer(text, add_special_tokens=add_special)["input_ids"] == item.input_ids
            for text, item in zip(texts, encoded)
        ):
            return "text", add_special
    return "token_ids", None


def _step_tag(encoded: Sequence[EncodedResponse]) -> int | None:
    """The one token id that ends every step and appears nowhere else, if there is one."""
    tags = {item.input_ids[end] for item in encoded for end in item.step_ends or []}
    if len(tags) != 1:
        return None
    (tag,) = tags
    for item in encoded:
        if [i for i, token in enumerate(item.input_ids) if token == tag] != item.step_ends:
            return None
    return tag


def _command(
    folder: Path, encoder: RecipeEncoder, pooler: dict | None = None, convert: bool = True
) -> list[str]:
    command = ["vllm", "serve", str(folder), "--runner", "pooling"]
    if convert:  # a decoder's *ForSequenceClassification, through vLLM's classify adapter
        command += ["--convert", "classify"]
    command += ["--max-model-len", str(encoder.recipe.max_length)]
    if pooler is not None:
        command += ["--pooler-config", json.dumps(pooler)]
    return command


def _as_text(tokenizer: Any, ids: Sequence[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def _sample_pairs() -> list[tuple[Prompt, str]]:
    """Rows to check tokenization on: bundled dev pairs, and Chinese chat turns."""
    from rewardforge.data import load_preferences
    from rewardforge.data.sample import sample_paths

    examples = load_preferences(sample_paths()[1]).examples[:12]
    pairs = [(e.prompt, response) for e in examples for response in e.responses]
    chinese = [{"role": "user", "content": "今天天气怎么样？"}]
    return pairs + [(chinese, "今天是晴天，很暖和。"), ("你好", "你好！有什么可以帮你？")]
