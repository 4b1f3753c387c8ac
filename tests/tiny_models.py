"""Tiny, randomly initialised Hugging Face models built offline for tests.

``build_tiny_llava`` writes a complete LLaVA checkpoint (config, seeded weights, byte-level BPE
tokenizer with a chat template, CLIP image processor, LlavaProcessor) into a folder, so tests
and CLI runs can load it with ``from_pretrained(<dir>)`` and no access to the Hub. The model
answers gibberish; it exists to exercise the plumbing (placeholders, image tokens, batching,
padding, truncation), not to score anything.
"""

from __future__ import annotations

from pathlib import Path

# Image geometry: 32x32 crops cut into 8x8 patches -> 16 image tokens per image after the CLS
# token is dropped ("default" feature selection), which keeps prompts short.
IMAGE_SIZE = 32
PATCH_SIZE = 8
NUM_IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<image>"]
VOCAB_SIZE = 2000

# Renders string or multimodal content; image parts become the processor's <image> token.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] }}: "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if not loop.last or add_generation_prompt %}{{ '\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)

# Training text for the tokenizer: the alphabets (so every letter gets its own token) plus
# words typical of MERA instructions, so Russian prompts encode at a few characters per token.
_CORPUS = [
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,:;!?()[]{}\"'-+*/=<>",
    "Внимательно посмотрите на изображение и ответьте на вопрос.",
    "Выберите правильный вариант ответа и напишите только букву.",
    "Ответ дайте одним словом или числом без пояснений.",
    "Задание: прочитайте текст и рассмотрите картинку. Вопрос: что изображено на картинке?",
    "Варианты ответа: A. кошка B. собака C. дом D. дерево. Ответ:",
    "На изображении показана таблица с данными о погоде в Москве.",
    "Сколько человек изображено на фотографии? Ответ запишите цифрой.",
    "Русский язык богат и выразителен; в нём много падежей и суффиксов.",
    "Пользователь задаёт вопрос, а ассистент отвечает кратко и точно.",
    "Прослушайте аудиозапись и посмотрите видео, затем ответьте на вопросы.",
    "Какой цвет у автомобиля на переднем плане? Красный, синий или зелёный?",
    "Реши задачу: в корзине было пять яблок, два съели. Сколько осталось?",
    "Look carefully at the image and answer the question with a single letter.",
    "The user asks a question and the assistant answers briefly.",
    "Choose the correct option: A, B, C or D. Answer:",
    "user: assistant: system: question answer image text",
]


def _build_tokenizer(
    special_tokens: list[str] | None = None,
    extra_special_tokens: dict[str, str] | None = None,
    chat_template: str | None = CHAT_TEMPLATE,
):
    """A byte-level BPE tokenizer (any text encodes; no [UNK]) wrapped for transformers.

    ``special_tokens`` are appended after the LLaVA ones (each stays one token);
    ``extra_special_tokens`` names them for processors (e.g. ``{"audio_token": "<|AUDIO|>"}``).
    """
    specials = SPECIAL_TOKENS + [t for t in special_tokens or [] if t not in SPECIAL_TOKENS]
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    # Prepend <s> like Llama tokenizers do, so plain and chat-templated prompts both start with it.
    bos_id = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>", **(extra_special_tokens or {})},
        model_max_length=4096,
        padding_side="left",
    )
    if chat_template:
        fast.chat_template = chat_template
    return fast


def build_tiny_llava(out_dir: Path, seed: int = 0) -> Path:
    """Write a tiny random LLaVA (model, tokenizer, processor) into ``out_dir``; return it.

    Deterministic for a given ``seed``; takes a second or two on a CPU; touches nothing outside
    ``out_dir``.
    """
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        GenerationConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}

    text_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,  # long enough for MERA prompts with a few images
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        pad_token_id=ids["<pad>"],
        tie_word_embeddings=False,
    )
    vision_config = CLIPVisionConfig(
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        projection_dim=32,
    )
    config = LlavaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_index=ids["<image>"],
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        pad_token_id=ids["<pad>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        pad_token_id=ids["<pad>"],
        do_sample=False,
    )
    model.save_pretrained(out_dir)

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_center_crop=True,
        do_convert_rgb=True,
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # the CLS token, dropped again by "default"
        chat_template=CHAT_TEMPLATE,
        image_token="<image>",
    )
    processor.save_pretrained(out_dir)
    return out_dir


# Qwen2-Audio: the processor's own (real) chat template is used; these are its tokens.
QWEN_AUDIO_TOKENS = ["<|im_start|>", "<|im_end|>", "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"]
# Seconds of audio the tiny Qwen2-Audio accepts (the real one: 30). Fixture clips are 0.6-1.5 s.
AUDIO_CHUNK_SECONDS = 2


def build_tiny_qwen2_audio(
    out_dir: Path, seed: int = 0, chunk_seconds: int = AUDIO_CHUNK_SECONDS
) -> Path:
    """Write a tiny random Qwen2-Audio (model, tokenizer, Whisper feature extractor,
    Qwen2AudioProcessor with its default chat template) into ``out_dir``; return it.

    The feature extractor pads/truncates to ``chunk_seconds`` at 16 kHz (100 mel frames a
    second), and the encoder's ``max_source_positions`` matches it, as in the real model.
    """
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2AudioConfig,
        Qwen2AudioEncoderConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        Qwen2Config,
        WhisperFeatureExtractor,
    )

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_tokenizer(
        QWEN_AUDIO_TOKENS,
        {
            "audio_token": "<|AUDIO|>",
            "audio_bos_token": "<|audio_bos|>",
            "audio_eos_token": "<|audio_eos|>",
        },
        chat_template=None,
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS + QWEN_AUDIO_TOKENS}
    mel_frames = chunk_seconds * 100
    audio_config = Qwen2AudioEncoderConfig(
        num_mel_bins=80,
        encoder_layers=2,
        encoder_attention_heads=2,
        encoder_ffn_dim=64,
        d_model=32,
        max_source_positions=mel_frames // 2,
    )
    text_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=ids["<s>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<pad>"],
        tie_word_embeddings=False,
    )
    config = Qwen2AudioConfig(
        audio_config=audio_config,
        text_config=text_config,
        audio_token_index=ids["<|AUDIO|>"],
        pad_token_id=ids["<pad>"],
    )
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<pad>"], do_sample=False
    )
    model.save_pretrained(out_dir)
    feature_extractor = WhisperFeatureExtractor(
        feature_size=80, sampling_rate=16000, hop_length=160, chunk_length=chunk_seconds
    )
    processor = Qwen2AudioProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)
    processor.save_pretrained(out_dir)
    return out_dir
