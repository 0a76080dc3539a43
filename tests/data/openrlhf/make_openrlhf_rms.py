"""Make the OpenRLHF reward-model folders in this directory with OpenRLHF's own code.

Run once, by hand, from the repository root (the suite only reads what it wrote):

    pip download --no-deps openrlhf==0.11.2 -d /tmp/orl
    unzip -q /tmp/orl/openrlhf-0.11.2-*.whl -d /tmp/orl/src
    .venv/bin/python -m pip install --target /tmp/orl/deps --no-deps \
        deepspeed einops hjson ninja py-cpuinfo msgpack pylatexenc
    .venv/bin/python tests/data/openrlhf/make_openrlhf_rms.py \
        --openrlhf /tmp/orl/src/openrlhf-0.11.2.data/purelib --deps /tmp/orl/deps

What it does, as OpenRLHF 0.11.2's `train_rm` does: a two-layer Llama base (the suite's tiny
tokenizer, ChatML template) goes through `get_llm_for_sequence_regression(base, "reward",
init_value_head=True, value_head_prefix=...)` with bf16 weights and OpenRLHF's tokenizer set-up
(`get_tokenizer`: pad = EOS); after "training" (the head's random start, moved by one seeded
step so that rewards differ), the trainer's evaluation sets `config.mean` / `config.std`, the
CLI sets `config.value_head_prefix`, and the model is saved as `strategy.save_model` does
outside ZeRO-3 (`save_pretrained`, then `config.to_json_file`, then the tokenizer).

Expected rewards come from OpenRLHF's own `RewardDataset.__getitem__` text rule and its
`RewardModel.forward`, loaded back as `serve_rm` loads it (raw, and with `normalize_reward`),
for plain prompts and for chat prompts rendered by `preprocess_data` with the chat template.
`flash_attn` is not installed: a stand-in module gives the names `ring_attn_utils` imports
(packing is off, so none is called).
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import shutil
import sys
import tempfile
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROMPTS = [
    "What is two plus two?",
    "Write one word for the colour of the sky.\n",
    "你好，请介绍一下你自己。",
]
RESPONSES = ["Four.", "Blue\n\n", "我是一个乐于助人的助手。"]
FOLDERS = {"rm": "score", "rm-value-head": "value_head"}  # folder -> --ds.value_head_prefix


def stand_in_flash_attn() -> None:
    """The few flash_attn names OpenRLHF imports at module level; never called here."""

    def unused(*_args, **_kwargs):
        raise RuntimeError("flash_attn is not installed: packing_samples must stay off")

    names = {
        "flash_attn": {},
        "flash_attn.bert_padding": dict.fromkeys(
            ["index_first_axis", "pad_input", "rearrange", "unpad_input"], unused
        ),
        "flash_attn.utils": {},
        "flash_attn.utils.distributed": {"all_gather": unused},
    }
    for name, attributes in names.items():
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)  # no distribution behind it
        module.__dict__.update(attributes)
        sys.modules[name] = module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--openrlhf", required=True, help="the unpacked wheel's purelib folder")
    parser.add_argument("--deps", required=True, help="deepspeed and friends, pip --target")
    args = parser.parse_args()
    # the repository first: the wheel ships a top-level `tests` package of its own
    sys.path[:0] = [str(HERE.parents[2]), args.openrlhf, args.deps]
    stand_in_flash_attn()

    import torch
    from openrlhf.models import get_llm_for_sequence_regression
    from openrlhf.utils.utils import get_tokenizer

    from tests.conftest import save_tiny_decoder

    expected: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        base = save_tiny_decoder(Path(scratch) / "base", "llama", chat_template=True)
        for number, (name, prefix) in enumerate(FOLDERS.items()):
            torch.manual_seed(11 + number)
            model = get_llm_for_sequence_regression(
                str(base),
                "reward",
                param_dtype="bf16",
                attn_implementation="eager",
                init_value_head=True,
                value_head_prefix=prefix,
            )
            tokenizer = get_tokenizer(str(base), model, "left")
            with torch.no_grad():  # a stand-in for training: the head somewhere else at random
                getattr(model, prefix).weight.add_(torch.randn_like(getattr(model, prefix).weight))
            model.config.mean, model.config.std = 0.375 - number, 1.5 + number  # rm_trainer
            model.config.value_head_prefix = prefix  # cli/train_rm.py
            output = HERE / name
            shutil.rmtree(output, ignore_errors=True)
            model.save_pretrained(output, state_dict=model.state_dict())
            model.config.to_json_file(str(output / "config.json"))
            tokenizer.save_pretrained(output)
            expected[name] = rewards_as_openrlhf_scores(output, tokenizer)
    (HERE / "expected_rewards.json").write_text(
        json.dumps(
            {"prompts": PROMPTS, "responses": RESPONSES, "rewards": expected},
            ensure_ascii=False,
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )


def rewards_as_openrlhf_scores(folder: Path, tokenizer) -> dict[str, list[float]]:
    """Rewards of PROMPTS x RESPONSES by OpenRLHF's text rule and forward, in float32 (the
    saved bf16 weights, upcast), raw and normalised, plain text and chat template."""
    import torch
    from openrlhf.datasets.reward_dataset import preprocess_data
    from openrlhf.models import get_llm_for_sequence_regression

    results = {}
    for normalize in (False, True):
        model = (
            get_llm_for_sequence_regression(
                str(folder),
                "reward",
                param_dtype="bf16",
                attn_implementation="eager",
                normalize_reward=normalize,
            )
            .float()
            .eval()
        )  # the bf16 weights as saved, computed in float32 as on a CPU
        # OpenRLHF pins transformers 5.15; under the 5.24 used here from_pretrained leaves the
        # non-persistent mean/std buffers that RewardModel.__init__ fills from the config
        # uninitialised, so they are filled again exactly as __init__ does.
        model.mean[0], model.std[0] = model.config.mean, model.config.std
        for chat in (False, True):
            rewards = []
            for prompt, response in zip(PROMPTS, RESPONSES):
                if chat:
                    row = {
                        "prompt": [{"role": "user", "content": prompt}],
                        "chosen": [{"role": "assistant", "content": response}],
                        "rejected": [{"role": "assistant", "content": response}],
                    }
                    template = tokenizer.apply_chat_template
                    text_prompt, chosen, _, _ = preprocess_data(
                        row, None, "prompt", "chosen", "rejected", template
                    )
                else:
                    row = {"prompt": prompt, "chosen": response, "rejected": response}
                    text_prompt, chosen, _, _ = preprocess_data(row, None, "prompt")
                text = (text_prompt + chosen).rstrip("\n")  # RewardDataset.__getitem__
                if not text.endswith(tokenizer.eos_token):
                    text += " " + tokenizer.eos_token
                ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
                with torch.no_grad():
                    reward = model(ids["input_ids"], attention_mask=ids["attention_mask"])
                rewards.append(float(reward[0]))
            key = ("chat" if chat else "plain") + ("_normalized" if normalize else "")
            results[key] = rewards
    return results


if __name__ == "__main__":
    main()
