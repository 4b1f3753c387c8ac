"""The start-up hook: backends in lm-eval's registry, our flags on `lm-eval run`."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
from conftest import ALL_TASKS, BIN, TASKS_DIR

from lm_eval_patches.cli_flags import only_include_path_tasks, take_flags
from lm_eval_patches.settings import RUN_OPTIONS


def test_fresh_interpreter_sees_our_backends_next_to_upstream() -> None:
    code = (
        "import lm_eval.api.registry as r\n"
        "print(r.model_registry._objs['mera-baseline'])\n"
        "print(r.get_model('hf-multimodal').__module__)\n"
        "print(r.get_model('mera-baseline').__name__)\n"
        "print('hf' in r.model_registry and 'vllm-vlm' in r.model_registry)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [
        "lm_eval_patches.models.baseline:MeraBaselineLM",
        "lm_eval_patches.models.hf_multimodal",
        "MeraBaselineLM",
        "True",
    ]


def test_plain_interpreter_does_not_import_lm_eval() -> None:
    """The hook costs nothing for programs that never use lm-eval."""
    code = "import sys; print('lm_eval' in sys.modules, 'lm_eval_patches._startup' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "False True"


def test_run_help_lists_original_flags() -> None:
    out = subprocess.run(
        [str(BIN / "lm-eval"), "run", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--pass_multimodal_args_to_chat_history" in out
    assert "--replace_videos_with_images_amount" in out


def test_pass_mode_needs_chat_template() -> None:
    args = argparse.Namespace(
        pass_multimodal_args_to_chat_history=True, replace_videos_with_images_amount=None
    )
    with pytest.raises(SystemExit, match="needs --apply_chat_template"):
        take_flags(args)


def test_flags_move_into_run_options_and_leave_the_namespace() -> None:
    args = argparse.Namespace(
        pass_multimodal_args_to_chat_history=True,
        replace_videos_with_images_amount=8,
        apply_chat_template=True,
    )
    try:
        take_flags(args)
        assert RUN_OPTIONS.pass_multimodal_args_to_chat_history is True
        assert RUN_OPTIONS.replace_videos_with_images_amount == 8
        assert not hasattr(args, "replace_videos_with_images_amount")
    finally:
        RUN_OPTIONS.pass_multimodal_args_to_chat_history = False
        RUN_OPTIONS.replace_videos_with_images_amount = None
    with pytest.raises(SystemExit, match="positive"):
        take_flags(argparse.Namespace(replace_videos_with_images_amount=0))


@pytest.mark.parametrize(
    ("model", "resolves"),
    [("mera-baseline", True), ("hf-multimodal", True), ("vllm-vlm", True), ("vllm", False)]
    + [(None, False)],
)
def test_backend_decides_whether_requests_carry_lazy_refs(
    model: str | None, resolves: bool
) -> None:
    try:
        take_flags(argparse.Namespace(model=model))
        assert RUN_OPTIONS.backend_resolves_media is resolves
    finally:
        RUN_OPTIONS.backend_resolves_media = True


def test_mera_only_runs_skip_the_builtin_task_index() -> None:
    def ns(tasks: list[str], include: str | None = str(TASKS_DIR)) -> argparse.Namespace:
        return argparse.Namespace(tasks=tasks, include_path=include)

    assert only_include_path_tasks(ns(["weird", "mera_audio"]))
    assert only_include_path_tasks(ns(["runaturalsciencevqa,ruclevr"]))
    assert not only_include_path_tasks(ns(["weird", "arc_easy"]))  # needs the built-ins
    assert not only_include_path_tasks(ns(["weird"], include=None))


def test_public_and_private_groups_split_every_dataset(mera_env) -> None:
    """mera_public and mera_private partition the pack, matching each dataset's access."""
    import lm_eval.tasks

    from lm_eval_patches.fixtures.builder import all_specs

    manager = lm_eval.tasks.TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    loaded = {g: manager.load([g])["tasks"] for g in ("mera_public", "mera_private")}
    public, private = set(loaded["mera_public"]), set(loaded["mera_private"])
    assert public | private == set(ALL_TASKS) and not public & private
    access = {f"MERA-evaluation/{spec.name}": spec.public for spec in all_specs()}
    for group, tasks in loaded.items():
        for name, task in tasks.items():
            assert access[task.config.dataset_path] == (group == "mera_public"), name
