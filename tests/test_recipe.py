import pytest
from transformers import AutoTokenizer

from rewardforge.data.conversation import messages_to_transcript
from rewardforge.recipe import RecipeEncoder, ScoringRecipe

PROMPT = [{"role": "user", "content": "How do I bake bread?"}]


@pytest.fixture
def chat_encoder(tiny_llama_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    return RecipeEncoder(ScoringRecipe.for_model(tokenizer, False, max_length=64), tokenizer)


def test_recipe_choice_follows_backbone(tiny_llama_dir, tiny_plain_llama_dir, tiny_bert_dir):
    chat = AutoTokenizer.from_pretrained(tiny_llama_dir)
    plain = AutoTokenizer.from_pretrained(tiny_plain_llama_dir)
    bert = AutoTokenizer.from_pretrained(tiny_bert_dir)
    assert ScoringRecipe.for_model(chat, False, 128).template == "chat"
    assert ScoringRecipe.for_model(plain, False, 128).template == "plain"
    pair = ScoringRecipe.for_model(bert, True, 128)
    assert (pair.template, pair.reward_token) == ("pair", "first")


def test_chat_rendering_matches_the_template(chat_encoder):
    prompt_text, response_text = chat_encoder.render(PROMPT, "Knead, rise, bake.")
    assert prompt_text.endswith("<|im_start|>assistant\n")
    assert response_text == "Knead, rise, bake.<|im_end|>\n"
    encoded = chat_encoder.encode(PROMPT, "Knead, rise, bake.")
    whole = chat_encoder.tokenizer(prompt_text + response_text, add_special_tokens=False)
    assert encoded.input_ids == whole["input_ids"] and not encoded.truncated


def test_truncation_keeps_latest_prompt_and_end_of_turn(chat_encoder):
    prompt = [{"role": "user", "content": "old words " * 80 + "LATEST QUESTION"}]
    encoded = chat_encoder.encode(prompt, "an answer " * 80)
    tokenizer = chat_encoder.tokenizer
    assert encoded.truncated and len(encoded.input_ids) == 64
    text = tokenizer.decode(encoded.input_ids)
    assert "LATEST QUESTION" in text and text.endswith("<|im_end|>\n")
    assert "<|im_start|>user" not in text  # the oldest prompt tokens went first


def test_plain_recipe_appends_eos(tiny_plain_llama_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_plain_llama_dir)
    encoder = RecipeEncoder(ScoringRecipe.for_model(tokenizer, False, 32), tokenizer)
    encoded = encoder.encode("Tell me a joke." * 20, "No." * 30)
    assert encoded.input_ids[-1] == tokenizer.eos_token_id and len(encoded.input_ids) == 32


def test_pair_recipe_matches_sentence_pair_encoding(tiny_bert_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    encoder = RecipeEncoder(ScoringRecipe.for_model(tokenizer, True, 128), tokenizer)
    encoded = encoder.encode(PROMPT, "Knead, rise, bake.")
    expected = tokenizer(messages_to_transcript(PROMPT), "Knead, rise, bake.")
    assert encoded.input_ids == expected["input_ids"]
    assert encoded.token_type_ids == expected["token_type_ids"]


def test_pair_recipe_truncates_prompt_from_the_left(tiny_bert_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    encoder = RecipeEncoder(ScoringRecipe.for_model(tokenizer, True, 24), tokenizer)
    encoded = encoder.encode("first " * 50 + "last", "reply")
    assert len(encoded.input_ids) == 24 and encoded.truncated
    assert tokenizer.decode(encoded.input_ids).startswith("[CLS] first")
    assert "last [SEP] reply [SEP]" in tokenizer.decode(encoded.input_ids)


def test_chinese_text_survives_encoding(chat_encoder):
    encoded = chat_encoder.encode([{"role": "user", "content": "你好"}], "谢谢！")
    assert "谢谢！" in chat_encoder.tokenizer.decode(encoded.input_ids)


def test_recipe_round_trip_and_normalisation(tmp_path):
    recipe = ScoringRecipe(template="chat", max_length=77).with_reward_stats(1.0, 2.0)
    recipe.save(tmp_path)
    loaded = ScoringRecipe.load(tmp_path)
    assert loaded == recipe and loaded.normalize(5.0) == 2.0


def test_missing_recipe_says_how_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="rewardforge train"):
        ScoringRecipe.load(tmp_path)


def test_complete_turn_restores_what_follows_the_end_of_turn_marker(
    chat_encoder, tiny_plain_llama_dir
):
    assert chat_encoder.complete_turn("Bake it.<|im_end|>") == "Bake it.<|im_end|>\n"
    assert chat_encoder.complete_turn("Bake it.<|im_end|>\n") == "Bake it.<|im_end|>\n"
    assert chat_encoder.complete_turn("Bake it.") == "Bake it."  # not a finished turn
    plain_tokenizer = AutoTokenizer.from_pretrained(tiny_plain_llama_dir)
    plain = RecipeEncoder(ScoringRecipe.for_model(plain_tokenizer, False, 64), plain_tokenizer)
    assert plain.complete_turn("Bake it.</s>") == "Bake it.</s>"


def reference_encoder_for(model_dir, max_length: int) -> RecipeEncoder:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    recipe = ScoringRecipe.for_model(tokenizer, False, max_length, reference_mode=True)
    tokenizer.add_special_tokens({"additional_special_tokens": recipe.added_tokens})
    return RecipeEncoder(recipe, tokenizer)


@pytest.fixture
def reference_encoder(tiny_llama_dir):
    return reference_encoder_for(tiny_llama_dir, max_length=512)


def test_reference_layout_is_prompt_reference_split_prompt_response_reward(reference_encoder):
    tokenizer = reference_encoder.tokenizer
    encoded = reference_encoder.encode(PROMPT, "Knead it.", reference="Knead, rise, bake.")
    prompt_text, reference_text = reference_encoder.render(PROMPT, "Knead, rise, bake.")
    _, response_text = reference_encoder.render(PROMPT, "Knead it.")
    text = f"{prompt_text}{reference_text}<|split|>{prompt_text}{response_text}<|reward|>"
    assert encoded.input_ids == tokenizer(text, add_special_tokens=False)["input_ids"]
    split, reward = tokenizer.convert_tokens_to_ids(["<|split|>", "<|reward|>"])
    assert encoded.input_ids.count(split) == 1 and encoded.input_ids.count(reward) == 1
    assert encoded.input_ids[-1] == reward
    # The shared prefix is everything before the response: prompt, reference, split, prompt.
    prefix = tokenizer.decode(encoded.input_ids[: encoded.prompt_length])
    assert prefix == f"{prompt_text}{reference_text}<|split|>{prompt_text}"


def test_reference_truncation_never_cuts_the_markers_or_turn_ends(tiny_llama_dir):
    encoder = reference_encoder_for(tiny_llama_dir, max_length=128)
    tokenizer = encoder.tokenizer
    prompt = [{"role": "user", "content": "old words " * 60 + "LATEST QUESTION"}]
    encoded = encoder.encode(prompt, "long answer " * 60, reference="ref words " * 60)
    assert encoded.truncated and len(encoded.input_ids) == 128
    text = tokenizer.decode(encoded.input_ids)
    assert text.count("<|split|>") == 1 and text.endswith("<|im_end|>\n<|reward|>")
    assert "<|im_end|>\n<|split|>" in text  # the reference keeps its end of turn
    assert text.count("QUESTION<|im_end|>") == 2  # both prompt copies keep their latest words


def test_reference_mode_is_enforced_both_ways(reference_encoder, chat_encoder):
    with pytest.raises(ValueError, match="needs a 'reference'|every response needs"):
        reference_encoder.encode(PROMPT, "Knead it.")
    with pytest.raises(ValueError, match="not reference-based"):
        chat_encoder.encode(PROMPT, "Knead it.", reference="Knead.")
    with pytest.raises(ValueError, match="reserves as a marker"):
        reference_encoder.encode(PROMPT, "Knead it. <|reward|>", reference="Knead.")


def test_reference_recipe_needs_its_tokens_in_the_tokenizer(tiny_llama_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    recipe = ScoringRecipe.for_model(tokenizer, False, max_length=64, reference_mode=True)
    with pytest.raises(ValueError, match="has no <\\|split\\|> token"):
        RecipeEncoder(recipe, tokenizer)


def test_encoders_read_a_reference_as_a_sentence_pair(tiny_bert_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    recipe = ScoringRecipe.for_model(tokenizer, True, 128, reference_mode=True)
    assert recipe.added_tokens == []
    encoded = RecipeEncoder(recipe, tokenizer).encode("Bread?", "Bake it.", reference="Knead.")
    expected = tokenizer("Bread? Knead.", "Bread? Bake it.")
    assert tokenizer.decode(encoded.input_ids) == tokenizer.decode(expected["input_ids"])
    assert encoded.token_type_ids == expected["token_type_ids"]


def test_a_bos_adding_tokenizer_keeps_its_bos_whatever_truncation_cuts(bos_tokenizers):
    plain_tokenizer, chat_tokenizer = bos_tokenizers
    bos = plain_tokenizer.bos_token_id
    assert plain_tokenizer("hi")["input_ids"][0] == bos  # the probe tokenizer adds one
    for tokenizer in (plain_tokenizer, chat_tokenizer):
        encoder = RecipeEncoder(ScoringRecipe.for_model(tokenizer, False, 48), tokenizer)
        short = encoder.encode("Hi?", "Hello.")
        long = encoder.encode("old words " * 80 + "LATEST", "an answer " * 10)
        assert long.truncated and len(long.input_ids) == 48
        for encoded in (short, long):
            assert encoded.input_ids[0] == bos and encoded.input_ids.count(bos) == 1
            assert encoded.input_ids[: encoded.prompt_length][0] == bos
        assert "LATEST" in tokenizer.decode(long.input_ids)


def test_reference_mode_keeps_the_bos_of_each_prompt_copy(bos_tokenizers):
    plain_tokenizer, chat_tokenizer = bos_tokenizers
    bos = plain_tokenizer.bos_token_id
    # Plain text: the tokenizer's BOS opens the sequence once; a chat template writes one per
    # prompt copy. Both survive truncation.
    for tokenizer, copies in ((plain_tokenizer, 1), (chat_tokenizer, 2)):
        recipe = ScoringRecipe.for_model(tokenizer, False, 96, reference_mode=True)
        tokenizer.add_special_tokens({"additional_special_tokens": recipe.added_tokens})
        encoder = RecipeEncoder(recipe, tokenizer)
        for prompt in ("Bread?", "old words " * 80 + "Bread?"):
            encoded = encoder.encode(prompt, "Bake it. " * 20, reference="Knead. " * 20)
            assert encoded.input_ids[0] == bos and encoded.input_ids.count(bos) == copies
            split = tokenizer.convert_tokens_to_ids("<|split|>")
            after_split = encoded.input_ids[encoded.input_ids.index(split) + 1]
            assert (after_split == bos) == (copies == 2)
