"""Published judges adopted with `--reward-format judge --judge-template`: the bundled Prometheus 2
templates equal prometheus-eval's own prompts and parse replies as its own parser does; a
Skywork-Critic-style judge's verdict, read in one pass after its "[[", equals the language
model's own next-token probabilities; a grading judge's grades are counted, never guessed."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from rewardforge.cli import app
from rewardforge.errors import UserError
from rewardforge.evaluation.judge_metrics import judge_metrics
from rewardforge.recipe.judge_render import question_messages
from rewardforge.recipe.judge_template import bundled_templates, load_judge_template
from rewardforge.scoring.judge import Judge
from tests.conftest import free_port, write_jsonl

runner = CliRunner()
SITE_PACKAGES = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
SITE_PACKAGES = SITE_PACKAGES / "site-packages"
PROMETHEUS = SITE_PACKAGES / "prometheus_eval"


def prometheus_module(name: str):
    """One file of the prometheus-eval wheel (its package imports fastchat and vLLM)."""
    path = PROMETHEUS / f"{name}.py"
    if not path.is_file():
        pytest.skip("prometheus-eval is not installed (setup.sh installs it)")
    spec = importlib.util.spec_from_file_location(f"prometheus_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_bundled_templates_are_the_published_judges_and_rewardbench_2s_ratings():
    assert bundled_templates() == [
        "prometheus2-absolute",
        "prometheus2-relative",
        "rewardbench2-ratings",
        "skywork-critic",
    ]


def test_prometheus_templates_are_prometheus_evals_own_prompts():
    prompts = prometheus_module("prompts")
    absolute = load_judge_template("prometheus2-absolute")
    assert absolute.system == prompts.ABS_SYSTEM_PROMPT and absolute.pairwise is None
    assert absolute.pointwise == prompts.ABSOLUTE_PROMPT_WO_REF.format(
        instruction="{prompt}", response="{answer}", rubric=prompts.HELPFULNESS_RUBRIC
    )
    relative = load_judge_template("prometheus2-relative")
    assert relative.system == prompts.REL_SYSTEM_PROMPT and relative.pointwise is None
    assert relative.pairwise == prompts.RELATIVE_PROMPT_WO_REF.format(
        instruction="{prompt}",
        response_A="{answer_a}",
        response_B="{answer_b}",
        rubric=prompts.HELPFULNESS_RUBRIC,
    )
    assert absolute.style == relative.style == "reasoning"


GRADED_REPLIES = [
    "The response is accurate and complete. [RESULT] 5",
    "Helpful but terse. [RESULT] (4)",
    "Feedback: partly relevant.\n[RESULT] 3\n",
    "Weak answer. Score: 2",
    "It misses the point. [SCORE] 1/5",
    "Rated [RESULT] 4 out of 5",
    "Excellent work. [RESULT] 7",  # outside 1-5
    "[RESULT] 5 but then more text after the grade",  # not at the end
    "I cannot grade this.",
    "",
]
COMPARED_REPLIES = [
    "Response A explains the steps; B does not. [RESULT] A",
    "B is more accurate.\n[RESULT] B\n",
    "Both are fine. [RESULT] (A or B)",
    "[Response B] is better.",
    "Result: A",
    "B wins, I think.",
    "",
]


@pytest.mark.parametrize("reply", GRADED_REPLIES)
def test_prometheus_grades_are_read_as_prometheus_eval_reads_them(reply):
    parser = prometheus_module("parser")
    _, expected = parser.parse_output(reply, mode="absolute")
    assert load_judge_template("prometheus2-absolute").parse_grade(reply) == expected


@pytest.mark.parametrize("reply", COMPARED_REPLIES)
def test_prometheus_verdicts_are_read_as_prometheus_eval_reads_them(reply):
    parser = prometheus_module("parser")
    _, expected = parser.parse_output(reply, mode="relative")
    assert load_judge_template("prometheus2-relative").parse_verdict(reply) == expected


def rewardbench_generative_v2():
    """`ratings_prompt` and the pattern `_get_single_rating` reads a rating with, taken from
    rewardbench 0.1.4's own generative_v2.py (which imports four API clients at load time)."""
    source = (SITE_PACKAGES / "rewardbench" / "generative_v2.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    prompt = next(
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "ratings_prompt"
    )
    rating = next(node for node in tree.body if getattr(node, "name", "") == "_get_single_rating")
    (pattern,) = [
        call.args[0].value
        for call in ast.walk(rating)
        if isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "search"
    ]
    return prompt, pattern


def rewardbench_rating(pattern: str, reply: str) -> int | None:
    """A rating as `_get_single_rating` reads it (-1 there is None here)."""
    found = re.search(pattern, reply.strip())
    return int(found.group(1)) if found and 1 <= int(found.group(1)) <= 10 else None


@pytest.mark.parametrize(
    "reply",
    ["Clear and correct. 9", "Rating: 10\n", "Off topic.\n3", "8/10", "It is fine.", "11", ""],
)
def test_rewardbench2_ratings_are_rewardbench_2s_own_prompt_and_parser(reply):
    prompt, pattern = rewardbench_generative_v2()
    ratings = load_judge_template("rewardbench2-ratings")
    assert ratings.pointwise == prompt.replace("{completion}", "{answer}")
    assert ratings.system is None and ratings.grades == (1, 10)
    assert ratings.parse_grade(reply) == rewardbench_rating(pattern, reply)


def test_a_system_message_goes_first_or_before_the_question_where_the_template_takes_none(
    tiny_llama_dir,
):
    judge = load_judge_template("prometheus2-absolute")
    chatml = AutoTokenizer.from_pretrained(tiny_llama_dir)
    messages = question_messages(chatml, judge, "Q")
    assert messages == [
        {"role": "system", "content": judge.system},
        {"role": "user", "content": "Q"},
    ]
    chatml.chat_template = (  # as Mistral's: only user and assistant turns
        "{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('no system role') }}{% endif %}[INST] {{ m['content'] }} [/INST]"
        "{% endfor %}"
    )
    folded = question_messages(chatml, judge, "Q")
    assert folded == [{"role": "user", "content": f"{judge.system}\n\nQ"}]


def adopt_judge(source: Path, output: Path, template: str) -> Path:
    flags = ["adopt", "--source", str(source), "--output", str(output)]
    result = runner.invoke(app, [*flags, "--reward-format", "judge", "--judge-template", template])
    assert result.exit_code == 0, result.output
    return output


def next_token_log_odds(folder: Path, messages: list[dict], prefix: str) -> float:
    """log P("A") - log P("B") after the conversation rendered in one piece and `prefix`, from
    the causal LM's full-vocabulary softmax."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text + prefix, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        log_probs = model(input_ids=ids).logits[0, -1].log_softmax(-1)
    a, b = (tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("A", "B"))
    return float(log_probs[a] - log_probs[b])


def test_a_skywork_critic_style_judge_is_read_after_its_brackets(tiny_llama_dir, tmp_path):
    folder = adopt_judge(tiny_llama_dir, tmp_path / "critic", "skywork-critic")
    recipe = json.loads((folder / "rewardforge_recipe.json").read_text())
    assert recipe["family"] == "judge" and recipe["judge"]["reply_prefix"] == "[["
    template = load_judge_template("skywork-critic")
    judge = Judge.load(folder)
    pairs = [("How do I boil an egg?", "Nine minutes in boiling water.", "Eggs are round.")]
    pairs.append(("天气怎么样？", "今天是晴天。", "不知道。"))
    verdicts = judge.judge_pairs(*map(list, zip(*pairs)))
    for (prompt, good, bad), verdict in zip(pairs, verdicts):
        for reading, (a, b) in ((verdict.in_order, (good, bad)), (verdict.swapped, (bad, good))):
            question = template.pairwise.format(prompt=prompt, answer_a=a, answer_b=b)
            messages = [{"role": "user", "content": question}]
            assert reading == pytest.approx(next_token_log_odds(folder, messages, "[["), abs=1e-4)


def test_a_judge_that_only_compares_is_evaluated_by_its_verdicts_and_scores_nothing(
    tiny_llama_dir, tmp_path
):
    folder = adopt_judge(tiny_llama_dir, tmp_path / "critic", "skywork-critic")
    rows = [
        {"prompt": "Can you help?", "chosen": "Yes, gladly.", "rejected": "No."},
        {"prompt": "能帮我吗？", "chosen": "当然可以。", "rejected": "不行。"},
    ]
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    result = runner.invoke(app, ["eval", "--model", str(folder), "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert "judge, 2 pairs asked in both orders: pairwise accuracy" in result.stdout
    assert "accuracy ±" not in result.stdout  # no table of rewards: it rates no single answer
    answers = write_jsonl(tmp_path / "answers.jsonl", [{"prompt": "Hi?", "response": "Hello."}])
    scored = runner.invoke(
        app,
        ["score", "--model", str(folder), "--input", str(answers), "--output", str(tmp_path / "o")],
    )
    assert scored.exit_code == 2
    assert "this judge only compares two answers and rates none alone" in scored.output


class GradingWriter:
    """A stand-in for a grading judge's language model: it writes the given replies to the
    question about each answer (keyed by the answer's text)."""

    tokenizer = SimpleNamespace(chat_template=None)

    def __init__(self, replies: dict[str, list[str]]) -> None:
        self.replies = replies
        self.asked: list[str] = []

    def sample_batch(self, prompts, n, settings):
        self.asked.extend(prompts)
        return [self._replies_to(prompt)[:n] for prompt in prompts]

    def _replies_to(self, question: str) -> list[str]:
        (answer,) = [answer for answer in self.replies if f"\n{answer}\n" in question]
        return self.replies[answer]


def test_grades_are_averaged_ties_count_half_and_ungraded_pairs_are_left_out():
    from rewardforge.data.example import PreferenceExample

    judge_prompt = load_judge_template("prometheus2-absolute")
    writer = GradingWriter(
        {
            "good one": ["Fine. [RESULT] 5", "Good. [RESULT] 4"],  # 4.5
            "bad one": ["Poor. [RESULT] 2", "no grade here"],  # 2
            "good two": ["[RESULT] 3", "[RESULT] 3"],  # 3
            "bad two": ["[RESULT] 3", "Score: 3"],  # 3: a tie
            "good three": ["[RESULT] 4", "[RESULT] 4"],
            "bad three": ["none", "still none"],  # no grade: the pair is left out
        }
    )
    judge = Judge.writing(writer, judge_prompt)
    examples = [
        PreferenceExample(f"question {n}", (f"good {n}", f"bad {n}"))
        for n in ("one", "two", "three")
    ]
    figures = judge_metrics(judge, examples, None, samples=2)
    assert figures["pairs"] == 3 and figures["graded_pairs"] == 2
    assert figures["ungraded_pairs"] == 1
    assert figures["grade_accuracy"] == pytest.approx((1 + 0.5) / 2)
    assert figures["grade_ties"] == pytest.approx(0.5)
    assert figures["mean_grade_better"] == pytest.approx((4.5 + 3) / 2)
    assert figures["replies"] == 12 and figures["unparsed_rate"] == pytest.approx(3 / 12)
    assert "pairwise_accuracy" not in figures  # it compares nothing
    # each question is Prometheus' own, system message first (plain text: a blank line)
    assert writer.asked[0].startswith(judge_prompt.system + "\n\n###Task Description:")
    assert "###Response to evaluate:\ngood one\n" in writer.asked[0]


def test_an_adopted_grading_judge_evaluates_by_writing_and_counts_what_it_cannot_read(
    tiny_llama_dir, tmp_path
):
    folder = adopt_judge(tiny_llama_dir, tmp_path / "prometheus", "prometheus2-absolute")
    rows = [{"prompt": "Can you help?", "chosen": "Yes, gladly.", "rejected": "No."}]
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    report = tmp_path / "report"
    result = runner.invoke(
        app, ["eval", "--model", str(folder), "--data", str(data), "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    written = json.loads((report / "metrics.json").read_text())["judge"]
    # an untrained tiny model (almost surely) writes no grade: the pair is left out, counted
    assert written["graded_pairs"] + written["ungraded_pairs"] == written["pairs"] == 1
    assert written["replies"] == 2 and "pairwise_accuracy" not in written
    if written["ungraded_pairs"]:
        assert "0 of 1 pairs graded: grade accuracy n/a" in result.stdout
        assert written["grade_accuracy"] is None and written["unparsed_rate"] > 0
    else:
        assert written["grade_accuracy"] in (0.0, 0.5, 1.0)
    unreadable = round(100 * written["unparsed_rate"])
    assert f"{unreadable}% of 2 replies without a verdict" in result.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("style: verdict\nfoo: 1\n", r"unknown key\(s\) foo"),
        ("pairwise: 'Which? {prompt} {answer_a}'\n", r"\{answer_b\}"),
        (
            "style: reasoning\npairwise: '{prompt} {answer_a} {answer_b}'\nverdict_pattern: '(A'\n",
            "verdict_pattern is not valid",
        ),
        ("pointwise: '{prompt} {answer}'\ngrade_pattern: '(\\d)'\n", "needs style: reasoning"),
        ("grades: [1]\npointwise: '{prompt} {answer}'\n", "grades must be two whole numbers"),
        ("style: verdict\n", "needs a pointwise or a pairwise question"),
    ],
)
def test_a_bad_template_file_is_one_line_naming_the_file(tmp_path, text, message):
    path = tmp_path / "judge.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=message) as raised:
        load_judge_template(path)
    assert str(path) in str(raised.value)


def test_judge_template_needs_the_judge_format_and_a_known_name(tiny_llama_dir, tmp_path):
    flags = ["adopt", "--source", str(tiny_llama_dir), "--output", str(tmp_path / "out")]
    unknown = runner.invoke(app, [*flags, "--reward-format", "judge", "--judge-template", "gpt9"])
    assert unknown.exit_code == 2
    assert "--judge-template gpt9: no such file, and not a bundled template" in unknown.output
    assert "skywork-critic" in unknown.output


def test_rewardbench2_with_a_grading_judge_rates_each_answer_and_ranks_ungraded_ones_last(
    tmp_path,
):
    from rewardforge.data.example import PreferenceExample
    from rewardforge.evaluation.rewardbench2 import _graded_rewards

    writer = GradingWriter(
        {
            "right": ["Good. [RESULT] 5", "[RESULT] 4"],
            "wrong one": ["[RESULT] 2", "[RESULT] 2"],
            "wrong two": ["nothing", "nothing at all"],
        }
    )
    judge = Judge.writing(writer, load_judge_template("prometheus2-absolute"))
    examples = [PreferenceExample("q", ("right", "wrong one", "wrong two"))]
    rewards, figures = _graded_rewards(judge, examples, samples=2)
    assert rewards == [[4.5, 2.0, 0.0]]  # no grade: below the lowest grade, 1
    assert figures == {"answers": 3, "ungraded_answers": 1, "replies": 6, "unparsed_rate": 2 / 6}


def test_rewardbench2_refuses_a_judge_that_only_compares(tiny_llama_dir, tmp_path):
    from tests.test_rewardbench2 import benchmark_rows

    folder = adopt_judge(tiny_llama_dir, tmp_path / "critic", "skywork-critic")
    data = write_jsonl(tmp_path / "rb2.jsonl", benchmark_rows(0, per_subset=1, ties=1))
    flags = ["eval", "--model", str(folder), "--data", str(data), "--benchmark", "rewardbench2"]
    result = runner.invoke(app, flags)
    assert result.exit_code == 2
    assert "RewardBench 2 rates each answer alone, and this judge only compares two" in (
        result.output
    )


def test_rewardbench2_with_an_adopted_grading_judge_counts_what_it_cannot_read(
    tiny_llama_dir, tmp_path
):
    from tests.test_rewardbench2 import benchmark_rows

    folder = adopt_judge(tiny_llama_dir, tmp_path / "rater", "rewardbench2-ratings")
    data = write_jsonl(tmp_path / "rb2.jsonl", benchmark_rows(0, per_subset=1, ties=0)[:2])
    report = tmp_path / "report"
    flags = ["eval", "--model", str(folder), "--data", str(data), "--benchmark", "rewardbench2"]
    result = runner.invoke(app, [*flags, "--report", str(report)])
    assert result.exit_code == 0, result.output
    scores = [json.loads(line) for line in (report / "scores.jsonl").read_text().splitlines()]
    # an untrained tiny model mostly writes no rating: each such answer is ranked last (0,
    # below the lowest rating) and counted
    ungraded = sum(reward == 0.0 for row in scores for reward in row["rewards"])
    assert f"graded by writing: {ungraded} of 8 answers without a grade" in result.stdout
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["judge"]["ungraded_answers"] == ungraded
    for row in scores:  # RewardBench's rule on the rewards written: 1/k for a k-way top tie
        rewards = row["rewards"]
        top = [reward == max(rewards) for reward in rewards]
        expected = 1 / sum(top) if top[0] else 0.0
        assert metrics["subsets"][row["subset"]]["score"] == pytest.approx(expected)


class LengthGrader(GradingWriter):
    """Grades an answer by its length (1 to 5), and writes no grade for answers of odd length."""

    def __init__(self) -> None:
        super().__init__({})

    def _replies_to(self, question: str) -> list[str]:
        answer = question.split("###Response to evaluate:\n", 1)[1].split("\n\n###Score")[0]
        grade = len(answer) % 5 + 1
        return ["no grade"] * 2 if len(answer) % 2 else [f"[RESULT] {grade}"] * 2


def test_best_of_n_with_a_grading_judge_keeps_the_highest_graded_answers(tiny_llama_dir, tmp_path):
    from dataclasses import replace as replaced

    from rewardforge.data.prompt_rows import read_prompts_with_references
    from rewardforge.generation.best_of_n import best_of_n
    from rewardforge.models.policy import Policy, SamplingSettings

    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "How do I bake bread?"}])
    sampling = SamplingSettings(max_new_tokens=12, temperature=1.0, top_p=1.0)
    policy = Policy.load(str(tiny_llama_dir))
    judge = Judge.writing(LengthGrader(), load_judge_template("prometheus2-absolute"))
    best_of_n(
        policy,
        judge,
        prompts,
        tmp_path / "sft.jsonl",
        n=6,
        top_k=6,
        sampling=sampling,
        pairs_output_path=tmp_path / "pairs.jsonl",
        progress=False,
    )
    ((line, prompt, _),) = read_prompts_with_references(prompts)
    answers = policy.sample(prompt, 6, replaced(sampling, seed=sampling.seed + line))
    graded = {a: (len(a) % 5 + 1 if len(a) % 2 == 0 else None) for a in answers}
    rows = [json.loads(text) for text in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert [row["reward"] for row in rows] == sorted(
        graded.values(), key=lambda g: (g is None, -(g or 0))
    )
    assert all((row["reward"] is None) == (row["unparsed"] == 1) for row in rows)  # 1 reply
    pairs = (tmp_path / "pairs.jsonl").read_text().splitlines()
    known = [g for g in graded.values() if g is not None]
    assert len(pairs) == (1 if rows[-1]["reward"] is not None and len(set(known)) > 1 else 0)


def test_serve_judges_pairs_with_a_judge_that_only_compares(tiny_llama_dir, tmp_path):
    import httpx

    from rewardforge import RewardModel
    from rewardforge.serving.app import create_app
    from tests.conftest import running_server

    folder = adopt_judge(tiny_llama_dir, tmp_path / "critic", "skywork-critic")
    pairs = [
        {"prompt": "How do I boil an egg?", "answer_a": "Nine minutes.", "answer_b": "Eggs."},
        {"prompt": "天气怎么样？", "answer_a": "不知道。", "answer_b": "今天是晴天。"},
    ]
    model = RewardModel.load(folder)
    offline = Judge(model).judge_pairs(
        *([pair[key] for pair in pairs] for key in ("prompt", "answer_a", "answer_b"))
    )
    with running_server(create_app(model)) as url:
        answered = httpx.post(f"{url}/v1/judge", json={"pairs": pairs}, timeout=60)
        single = {"items": [{"prompt": "Hi?", "response": "Hello."}]}
        scored = httpx.post(f"{url}/v1/score", json=single, timeout=60)
    assert answered.status_code == 200, answered.text
    for result, verdict in zip(answered.json()["results"], offline, strict=True):
        assert result["in_order"] == pytest.approx(verdict.in_order, abs=1e-5)
        assert result["swapped"] == pytest.approx(verdict.swapped, abs=1e-5)
    assert scored.status_code == 422
    assert "this judge only compares two answers and rates none alone" in scored.text


class ComparingWriter(GradingWriter):
    """Writes "[RESULT] A" when the first answer shown is longer, else "[RESULT] B"."""

    def __init__(self) -> None:
        super().__init__({})

    def _replies_to(self, question: str) -> list[str]:
        first = question.split("###Response A:\n", 1)[1].split("\n\n###Response B:\n")[0]
        second = question.split("###Response B:\n", 1)[1].split("\n\n###Score Rubric:")[0]
        return ["Feedback. [RESULT] " + ("A" if len(first) > len(second) else "B")] * 3


def test_serve_a_judge_that_writes_its_verdicts_and_one_that_writes_grades():
    import httpx

    from rewardforge.serving.app import create_app
    from rewardforge.serving.config import ServerSettings
    from tests.conftest import running_server

    settings = ServerSettings(judge_samples=2)
    comparing = Judge.writing(ComparingWriter(), load_judge_template("prometheus2-relative"))
    pairs = [
        {"prompt": "q", "answer_a": "a longer answer", "answer_b": "short"},
        {
            "prompt": [{"role": "user", "content": "问"}],
            "answer_a": "短",
            "answer_b": "长一些的回答",
        },
    ]
    offline = comparing.judge_pairs(
        *([pair[key] for pair in pairs] for key in ("prompt", "answer_a", "answer_b")), samples=2
    )
    with running_server(create_app(comparing, settings)) as url:
        answered = httpx.post(f"{url}/v1/judge", json={"pairs": pairs}, timeout=60)
        single = {"items": [{"prompt": "q", "response": "r"}]}
        refused = httpx.post(f"{url}/v1/score", json=single, timeout=60)
        health = httpx.get(f"{url}/health", timeout=60)
    assert answered.status_code == 200, answered.text
    results = answered.json()["results"]
    assert [r["first_better"] for r in results] == [v.first_better for v in offline]
    assert results[0]["first_better"] > 0.5 > results[1]["first_better"]
    assert refused.status_code == 422 and "this judge writes its verdicts" in refused.text
    assert health.json()["status"] == "ok"

    grader = GradingWriter(
        {"good": ["[RESULT] 5", "[RESULT] 4"], "bad": ["nothing", "[RESULT] 1"], "?": ["no"] * 2}
    )
    grading = Judge.writing(grader, load_judge_template("prometheus2-absolute"))
    items = [{"prompt": "q", "response": answer} for answer in ("good", "bad", "?")]
    with running_server(create_app(grading, settings)) as url:
        graded = httpx.post(f"{url}/v1/score", json={"items": items}, timeout=60)
        compared = httpx.post(f"{url}/v1/judge", json={"pairs": pairs}, timeout=60)
        openrlhf = httpx.post(f"{url}/get_reward", json={"query": ["q r"]}, timeout=60)
    assert graded.status_code == 200, graded.text
    assert graded.json() == {"rewards": [4.5, 1.0, None], "unparsed": [0, 1, 2]}
    assert compared.status_code == 422 and "grades one answer at a time" in compared.text
    assert openrlhf.status_code == 422 and "this judge writes its verdicts" in openrlhf.text


def test_the_serve_command_loads_a_judge_that_writes(tiny_llama_dir, tmp_path, monkeypatch):
    import httpx
    import uvicorn

    from rewardforge.serving.config import ServerSettings
    from rewardforge.serving.launch import serve
    from tests.conftest import running_server

    folder = adopt_judge(tiny_llama_dir, tmp_path / "prometheus", "prometheus2-absolute")
    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **where: served.append(app))
    serve(ServerSettings(model=str(folder), port=free_port()))
    (app,) = served
    with running_server(app) as url:
        graded = httpx.post(
            f"{url}/v1/score", json={"items": [{"prompt": "q", "response": "r"}]}, timeout=120
        )
    assert graded.status_code == 200, graded.text
    body = graded.json()
    # one reply: a grade, or (an untrained tiny model, almost surely) none, counted
    assert body["unparsed"] in ([0], [1]) and (body["rewards"][0] is None) == (
        body["unparsed"] == [1]
    )
