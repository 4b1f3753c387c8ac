"""Scaffold a new MERA task folder: task YAML on the shared template, README, fixture spec.

The folder works at once: lm-eval loads the task from the pack, ``mera-mm fixtures
--include_path <pack>`` writes synthetic data for it from ``fixture.yaml``, and the prompt
snapshot machinery renders its first test doc. The contributor then replaces the placeholders
(prompt, question, options, README text) with the real dataset's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
MODALITIES = ("image", "audio", "video")
_PROMPT_INTRO = {
    "image": "Рассмотрите изображение.\n<image>",
    "audio": "Прослушайте аудиозапись.\n<audio>",
    "video": "Посмотрите видео.\n<video>",
}
_QUESTION = {
    "image": "Что изображено на картинке?",
    "audio": "Что слышно на записи?",
    "video": "Что происходит на видео?",
}
_OPTIONS = {
    "image": ["геометрические фигуры", "пейзаж", "портрет", "текст"],
    "audio": ["звуковой сигнал", "музыка", "речь", "тишина"],
    "video": ["движутся фигуры", "идёт дождь", "говорит человек", "ничего не меняется"],
}


def _block_dumper():
    import yaml

    class BlockDumper(yaml.SafeDumper):
        """Writes multi-line strings as ``|-`` blocks, as a person would."""

    def text(dumper: yaml.SafeDumper, value: str):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    BlockDumper.add_representer(str, text)
    return BlockDumper


@dataclass(frozen=True)
class TaskScaffold:
    """What to write: lm-eval task name, hub dataset name, modality, access."""

    name: str
    modality: str
    dataset: str
    access: str = "public"

    def validate(self) -> None:
        """Raise ValueError for a bad name, modality or access."""
        if not NAME_RE.match(self.name):
            raise ValueError(
                f"task name {self.name!r}: use 2-41 lower-case letters, digits and _, "
                "starting with a letter (lm-eval task names are lower case)"
            )
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {', '.join(MODALITIES)}")
        if self.access not in ("public", "private"):
            raise ValueError("access must be public or private")
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", self.dataset):
            raise ValueError(f"dataset name {self.dataset!r} is not a valid hub repository name")

    def instruction(self) -> str:
        lines = "\n".join(f"{c}. {{option_{c.lower()}}}" for c in "ABCD")
        return (
            f"{_PROMPT_INTRO[self.modality]}\nВопрос: {{question}}\n{lines}\n"
            "Ответьте только буквой правильного варианта.\nОтвет:"
        )

    def task_yaml(self) -> str:
        return (
            "include: ../_mera_template_yaml\n"
            f"task: {self.name}\n"
            f"dataset_path: MERA-evaluation/{self.dataset}\n"
            "# answer: letter (the baseline picks an option letter) or free (free-form answers).\n"
            "mera:\n"
            "  answer: letter\n"
            "  scoring: {kind: em, ignore_case: true, ignore_punctuation: true}\n"
        )

    def fixture_yaml(self) -> str:
        import yaml

        spec = {
            "dataset": self.dataset,
            "access": self.access,
            "modality": self.modality,
            "instruction": self.instruction(),
            "questions": [_QUESTION[self.modality]],
            "options": _OPTIONS[self.modality],
            "shots": 3,
            "test": 8,
        }
        header = (
            "# Synthetic data for the tests (mera-mm fixtures --include_path <task pack>).\n"
            "# Keep the instruction in step with the real dataset's prompts; the first option\n"
            "# is the right answer, its letter is shuffled per record.\n"
        )
        return header + yaml.dump(
            spec, Dumper=_block_dumper(), allow_unicode=True, sort_keys=False, width=100
        )

    def readme(self) -> str:
        access = (
            "Public: test golds are on the hub, so local metrics are meaningful."
            if self.access == "public"
            else "Private: test golds are hidden on the hub; run with `--predict_only` and "
            "submit the samples."
        )
        source = f"Dataset: `MERA-evaluation/{self.dataset}` (splits `shots` and `test`)."
        return f"""# {self.name}

{source} Task YAML: `{self.name}.yaml`.

## What it measures

TODO: one paragraph: the skill this task tests and how the items were made.

## Data fields

- `instruction`: the prompt template (`{{field}}` text slots, `<{self.modality}>` media slot)
- `inputs`: `{self.modality}` ({self.modality.capitalize()}), `question`, `option_a`..`option_d`
- `outputs`: `A`, `B`, `C` or `D`
- `meta`: `id`; `categories.source`

## Metric

- `exact_match`: the original harness EM (no whitespace stripping; ignores case and ASCII
  punctuation).
- `exact_match_norm`: Unicode-aware normalisation and one answer letter pulled out of the reply.

## Access

{access}
"""


def write_scaffold(scaffold: TaskScaffold, tasks_dir: str | Path) -> list[Path]:
    """Write ``<tasks_dir>/<name>/`` with its YAML, README.md and fixture.yaml.

    Raises:
        ValueError: bad arguments, a missing task pack, or a folder or task name already used.
    """
    scaffold.validate()
    pack = Path(tasks_dir)
    if not (pack / "_mera_template_yaml").is_file():
        raise ValueError(f"{pack} is not the MERA task pack (no _mera_template_yaml)")
    folder = pack / scaffold.name
    if folder.exists():
        raise ValueError(f"{folder} already exists")
    used = re.compile(rf"^task:\s*{re.escape(scaffold.name)}\s*$", re.M)
    for path in pack.rglob("*.yaml"):
        if used.search(path.read_text(encoding="utf-8")):
            raise ValueError(f"task name {scaffold.name!r} is already defined in {path}")
    folder.mkdir()
    files = {
        f"{scaffold.name}.yaml": scaffold.task_yaml(),
        "README.md": scaffold.readme(),
        "fixture.yaml": scaffold.fixture_yaml(),
    }
    written = []
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
        written.append(folder / name)
    return written
