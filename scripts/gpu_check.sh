#!/usr/bin/env bash
# GPU check: runs vllm-vlm (images, audio, video; plain and chat modes) and hf-multimodal on CUDA
# with small public models over the synthetic fixture datasets, then checks that every sample got
# a real answer (no failure answers, nothing empty).
#
# UNVERIFIED: written on CPU-only machines where vLLM cannot be installed; the offline suite tests
# vllm-vlm against a stand-in of vLLM's API instead (tests/test_vllm_vlm.py).
#
# Needs: a CUDA GPU, `pip install -e '.[vllm]'` (vLLM brings its CUDA torch), and the Hub (or the
# models below in the HF cache). Models can be swapped through the environment:
#   VISION_MODEL  image + video model for both backends (default: LLaVA-OneVision 0.5B)
#   AUDIO_MODEL   audio model for vllm-vlm (default: Qwen2-Audio 7B Instruct)
#   LIMIT         docs per task (default 4); OUT output folder (default: a temp dir)
# Usage: scripts/gpu_check.sh            (exit status 0 when every run answered every sample)
set -euo pipefail

VISION_MODEL="${VISION_MODEL:-llava-hf/llava-onevision-qwen2-0.5b-ov-hf}"
AUDIO_MODEL="${AUDIO_MODEL:-Qwen/Qwen2-Audio-7B-Instruct}"
LIMIT="${LIMIT:-4}"
OUT="${OUT:-$(mktemp -d -t mera-gpu-check-XXXX)}"
TASKS_DIR="$(cd "$(dirname "$0")/.." && pwd)/multimodal_tasks"
export MERA_DATA_DIR="$OUT/mirror"

mera-mm fixtures --out "$MERA_DATA_DIR" --test "$LIMIT"

status=0
run() {  # run NAME MODEL MODEL_ARGS TASKS [extra lm-eval flags...]
  local name="$1" model="$2" args="$3" tasks="$4"
  shift 4
  echo "== $name: --model $model --model_args $args --tasks $tasks $*"
  if ! lm-eval run --model "$model" --model_args "$args" --tasks "$tasks" \
      --include_path "$TASKS_DIR" --limit "$LIMIT" --batch_size 2 --seed 1234 \
      --log_samples --output_path "$OUT/$name" "$@"; then
    echo "!! $name: lm-eval exited non-zero"
    status=1
  fi
}

VLLM_COMMON="gpu_memory_utilization=0.5,max_model_len=8192,dtype=bfloat16,image_max_side=448"
run vllm_image_plain vllm-vlm "pretrained=$VISION_MODEL,$VLLM_COMMON,max_images=4" \
  ruclevr,weird --apply_chat_template
run vllm_image_chat vllm-vlm "pretrained=$VISION_MODEL,$VLLM_COMMON,max_images=4" \
  ruclevr,weird --apply_chat_template --pass_multimodal_args_to_chat_history
run vllm_video_plain vllm-vlm "pretrained=$VISION_MODEL,$VLLM_COMMON,max_videos=1,video_frames=8" \
  commonvideoqa --apply_chat_template
run vllm_video_frames vllm-vlm "pretrained=$VISION_MODEL,$VLLM_COMMON,max_images=8" \
  commonvideoqa --apply_chat_template --pass_multimodal_args_to_chat_history \
  --replace_videos_with_images_amount 4
run vllm_audio_plain vllm-vlm "pretrained=$AUDIO_MODEL,$VLLM_COMMON,max_audios=2" \
  aquaria,ruenvaqa --apply_chat_template
run vllm_audio_chat vllm-vlm "pretrained=$AUDIO_MODEL,$VLLM_COMMON,max_audios=2" \
  aquaria,ruenvaqa --apply_chat_template --pass_multimodal_args_to_chat_history
run hf_image hf-multimodal "pretrained=$VISION_MODEL,dtype=bfloat16,device=cuda,image_max_side=448" \
  ruclevr,weird --apply_chat_template

# Every logged sample must hold a non-empty answer that is not a failure answer.
python - "$OUT" <<'PY' || status=1
import json, sys
from pathlib import Path

from lm_eval_patches.failures import is_failure

bad, total = [], 0
for path in sorted(Path(sys.argv[1]).glob("*/**/samples_*.jsonl")):
    for line in path.read_text(encoding="utf-8").splitlines():
        sample = json.loads(line)
        answer = sample["resps"][0][0]
        total += 1
        if is_failure(answer) or not answer.strip():
            bad.append(f"{path.parent.parent.name} {path.name} doc {sample['doc_id']}: {answer!r}")
print(f"{total} samples checked, {len(bad)} without a real answer")
print("\n".join(bad[:20]))
sys.exit(1 if bad or not total else 0)
PY
echo "outputs in $OUT; exit status $status"
exit "$status"
