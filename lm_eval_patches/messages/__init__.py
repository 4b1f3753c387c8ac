"""The one message builder: prompts with media placeholders become chat messages.

Every chat consumer (the API backends, the model server's adapters, HF processors' chat
templates, vLLM's ``LLM.chat``) works on one neutral structure, built here and nowhere else:

    messages = [
        {"role": "system" | "user" | "assistant", "content": [part, ...]},
        ...
    ]
    part = {"type": "text", "text": str}
         | {"type": "image", "image": MediaRef}
         | {"type": "audio", "audio": MediaRef}
         | {"type": "video", "video": MediaRef}

Media parts sit where their placeholder (``<image>``, ``<audio>``, ``<video>``, numbered
``<audio_1>``...) was in the text, in the order the request's media came (few-shot docs first,
then the doc itself: lm-eval's and the original project's order). The part shape is Hugging
Face's chat-template shape (``{"type": "image", "image": ...}``), so a processor's
``apply_chat_template`` takes it once the MediaRef is swapped for the form the processor wants
(:func:`map_media`). A remote media URL kept by the parser (only when allowed) is a ``str`` in
place of the MediaRef.

- :func:`build_messages`: prompt (text or lm-eval chat history) + ordered media -> structure;
- :func:`render_messages`: structure -> OpenAI-shaped JSON for a ``dialect`` (``vllm`` or
  ``openai``), with images as their original bytes unless a resize is asked for;
- :func:`parse_openai_messages`: OpenAI-shaped JSON (either dialect) -> structure;
- :class:`ChatHistory`: the structure as a request context (pass mode,
  ``--pass_multimodal_args_to_chat_history``).
"""

from lm_eval_patches.messages.build import (
    MEDIA_KINDS,
    ChatHistory,
    MessageError,
    build_messages,
    coerce_media,
    map_media,
    media_parts,
)
from lm_eval_patches.messages.parse import decode_data_url, parse_openai_messages
from lm_eval_patches.messages.render import DIALECTS, RenderOptions, render_messages

__all__ = [
    "ChatHistory",
    "DIALECTS",
    "MEDIA_KINDS",
    "MessageError",
    "RenderOptions",
    "build_messages",
    "coerce_media",
    "decode_data_url",
    "map_media",
    "media_parts",
    "parse_openai_messages",
    "render_messages",
]
