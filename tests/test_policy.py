from rewardforge.models.policy import Policy, SamplingSettings

SHORT = SamplingSettings(max_new_tokens=8, temperature=1.0, top_p=1.0, seed=3)


def test_sampling_is_reproducible_per_seed(tiny_llama_dir):
    policy = Policy.load(str(tiny_llama_dir))
    first = policy.sample("你好", 4, SHORT)
    assert len(first) == 4 and all(isinstance(answer, str) for answer in first)
    assert policy.sample("你好", 4, SHORT) == first
    other = SamplingSettings(max_new_tokens=8, temperature=1.0, top_p=1.0, seed=4)
    assert policy.sample("你好", 4, other) != first


def test_chat_prompts_use_the_chat_template(tiny_llama_dir):
    policy = Policy.load(str(tiny_llama_dir))
    text = policy._prompt_text([{"role": "user", "content": "Hi"}])
    assert text.startswith("<|im_start|>user\nHi") and text.endswith("<|im_start|>assistant\n")


def test_bundled_smollm2_answers_a_chat_prompt():
    policy = Policy.load("smollm2-135m")
    answers = policy.sample([{"role": "user", "content": "What is 2 + 2?"}], 2, SHORT)
    assert len(answers) == 2 and all(answer.strip() for answer in answers)
