import pytest

from rewardforge import RewardModel


@pytest.fixture(scope="module")
def reward_model(tiny_reward_model_dir) -> RewardModel:
    return RewardModel.load(tiny_reward_model_dir)


def test_score_equals_the_plain_transformers_classifier_on_the_recipe_tokens(
    reward_model, tiny_reward_model_dir
):
    import torch
    from transformers import AutoModelForSequenceClassification

    prompts, responses = ["Hi", [{"role": "user", "content": "你好"}]], ["Hello", "你好！"]
    rewards = reward_model.score(prompts, responses)
    classifier = AutoModelForSequenceClassification.from_pretrained(tiny_reward_model_dir).eval()
    for prompt, response, reward in zip(prompts, responses, rewards):
        ids = reward_model.encoder.encode(prompt, response).input_ids
        with torch.no_grad():
            expected = classifier(torch.tensor([ids])).logits[0, 0].item()
        assert reward == pytest.approx(expected, abs=1e-5)
    assert rewards[0] != rewards[1]


def distinct_prefixes(sequences: list[list[int]]) -> int:
    """Tokens fed when sequences that share a prefix read it once: the distinct prefixes."""
    return len({tuple(ids[: end + 1]) for ids in sequences for end in range(len(ids))})


def test_responses_to_one_prompt_share_it_and_score_as_alone(reward_model, tiny_reward_model_dir):
    """Four answers to each of two questions, interleaved: each question's tokens are fed once
    (counted here as the distinct prefixes of each question's answers), and every reward is the
    transformers classifier's on that answer alone."""
    import torch
    from transformers import AutoModelForSequenceClassification

    questions = ["How do I boil an egg?", "What is 2 + 2?"]
    answers = ["Eight minutes.", "Put it in water.", "4.", "Blue."]
    prompts = [questions[i % 2] for i in range(8)]
    responses = [answers[i // 2] for i in range(8)]
    assert reward_model.plan.share_prompt
    before = (reward_model.tokens.in_rows, reward_model.tokens.fed)
    rewards = reward_model.score(prompts, responses)
    ids = [reward_model.encoder.encode(p, r).input_ids for p, r in zip(prompts, responses)]
    by_question = [[ids[i] for i in range(8) if prompts[i] == q] for q in questions]
    assert reward_model.tokens.in_rows - before[0] == sum(len(x) for x in ids)
    assert reward_model.tokens.fed - before[1] == sum(map(distinct_prefixes, by_question))
    assert reward_model.tokens.fed - before[1] < sum(len(x) for x in ids) * 0.7
    classifier = AutoModelForSequenceClassification.from_pretrained(tiny_reward_model_dir).eval()
    with torch.no_grad():
        alone = [classifier(torch.tensor([x])).logits[0, 0].item() for x in ids]
    assert rewards == pytest.approx(alone, abs=1e-5)


def test_a_group_of_one_prompt_stays_within_the_batch_budget(tiny_reward_model_dir):
    """Many answers to one prompt are cut into groups whose tokens fit one batch."""
    model = RewardModel.load(tiny_reward_model_dir)
    responses = [f"Answer {n}." for n in range(1, 10)] + ["Answer 0.", "Answer 1.", "Answer 2."]
    encoded = [model.encoder.encode("Say something.", r) for r in responses]
    prompt, own = encoded[0].prompt_length, len(encoded[0].input_ids) - encoded[0].prompt_length
    assert {len(e.input_ids) - e.prompt_length for e in encoded} == {own}
    model.max_tokens_per_batch = prompt + 3 * own
    groups = model._prompt_groups(encoded)
    assert groups == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
    assert model.score_encoded(encoded) == pytest.approx(
        RewardModel.load(tiny_reward_model_dir).score(["Say something."] * 12, responses),
        abs=1e-5,
    )


def test_normalised_scores_use_the_stored_statistics(reward_model):
    raw = reward_model.score(["Hi"], ["Hello"])[0]
    normalised = reward_model.score(["Hi"], ["Hello"], normalize=True)[0]
    recipe = reward_model.recipe
    assert normalised == pytest.approx((raw - recipe.reward_mean) / recipe.reward_std)


def test_compare_and_rank_agree_with_scores(reward_model):
    candidates = ["Sure.", "No.", "Let me explain step by step."]
    rewards = reward_model.score(["Help?"] * 3, candidates)
    ranking = reward_model.rank("Help?", candidates)
    assert [index for index, _ in ranking] == sorted(range(3), key=lambda i: -rewards[i])
    probability = reward_model.compare("Help?", candidates[0], candidates[1])
    assert (probability > 0.5) == (rewards[0] > rewards[1])
    assert reward_model.compare("Help?", candidates[0], candidates[0]) == pytest.approx(0.5)


def test_mismatched_lengths_are_rejected(reward_model):
    with pytest.raises(ValueError, match=r"one prompt and one reference \(if any\) per response"):
        reward_model.score(["a", "b"], ["only one"])


def test_trl_reward_function_renders_with_the_reward_models_own_recipe(
    reward_model, tiny_plain_llama_dir
):
    """The policy (plain text, no chat template) formats nothing the RM reads: TRL hands over
    raw prompts and completions, and the RM renders them with its ChatML recipe."""
    from transformers import AutoTokenizer

    policy_tokenizer = AutoTokenizer.from_pretrained(tiny_plain_llama_dir)
    assert policy_tokenizer.chat_template is None and reward_model.recipe.template == "chat"
    prompts = ["How do I bake bread?", "你好吗？"]
    completions = ["Knead, rise, bake.", "很好，谢谢。"]
    reward = reward_model.reward_function()
    expected = reward_model.score(prompts, completions)
    assert reward(prompts=prompts, completions=completions, completion_ids=None) == expected
    chat_prompts = [[{"role": "user", "content": prompt}] for prompt in prompts]
    chat_completions = [[{"role": "assistant", "content": text}] for text in completions]
    assert reward(prompts=chat_prompts, completions=chat_completions) == pytest.approx(expected)
    normalized = reward_model.reward_function(normalize=True)
    assert normalized(prompts=prompts, completions=completions) == pytest.approx(
        reward_model.score(prompts, completions, normalize=True)
    )


def test_reference_model_scores_rank_and_rewards_for_trl_with_references(
    tiny_reference_model_dir,
):
    model = RewardModel.load(tiny_reference_model_dir)
    candidates = ["晴。", "今天是晴天。", "您好！今天天气晴朗。"]
    rewards = model.score(["天气？"] * 3, candidates, ["晴天。"] * 3)
    ranking = model.rank("天气？", candidates, reference="晴天。")
    assert [index for index, _ in ranking] == sorted(range(3), key=lambda i: -rewards[i])
    # TRL passes the dataset's extra columns, here `reference`, to the reward function.
    reward = model.reward_function()
    assert reward(["天气？"] * 3, candidates, reference=["晴天。"] * 3) == pytest.approx(rewards)
    with pytest.raises(ValueError, match="every response needs a 'reference'"):
        reward(["天气？"], ["晴。"])


def test_an_encoder_reward_model_takes_trl_chat_prompts(tiny_bert_dir, tmp_path):
    """Passed to TRL directly, an encoder reward model crashes on chat prompts (it has no chat
    template); its reward function renders them through the recipe instead."""
    from tests.conftest import train_tiny_reward_model

    encoder_model = RewardModel.load(train_tiny_reward_model(tiny_bert_dir, tmp_path))
    prompts = [[{"role": "user", "content": "你好吗？"}], [{"role": "user", "content": "Hi"}]]
    completions = [
        [{"role": "assistant", "content": "很好。"}],
        [{"role": "assistant", "content": "Hello!"}],
    ]
    rewards = encoder_model.reward_function()(prompts, completions)
    assert rewards == pytest.approx(encoder_model.score(prompts, ["很好。", "Hello!"]))
