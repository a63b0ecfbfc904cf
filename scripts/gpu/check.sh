#!/usr/bin/env bash
# The GPU check, in one device call (README, "CUDA"): build against the device's CUDA torch, run
# the CUDA tests and the bf16 / fp16 parity tests on the GPU, then the LLaVA-Med-7B scale table.
# Every output goes to $OUT (the device tool brings it back); each stage has its own time limit
# and a failed stage does not stop the next.
#
#   ../shared/scripts/device-pack                       # here, once (node + node_modules -> .device/)
#   device run, carry [".device"], timeout_s 600:
#     source .device/setup.sh && bash scripts/gpu/check.sh
#   STAGES=scale bash scripts/gpu/check.sh                # a second call on the still-warm machine
#
# Knobs: STAGES (build,tests,scale), DEADLINE_S (570: the whole call ends by then, inside the
# device's 600 s), SCALE_METHODS (default ln,attn,ffn,lora), BUILD_TIMEOUT_S (240), TESTS_TIMEOUT_S
# (150). The scale stage gets what is left: it starts no new method in the last 100 s and writes
# its table after every method, so a call that runs out of time still brings back finished rows;
# a second call (STAGES=scale SCALE_METHODS=<the rest>) on the still-warm machine reuses the
# checkpoint in /tmp.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/runs/gpu-check}
mkdir -p "$OUT"
STAGES=${STAGES:-build,tests,scale}
summary="$OUT/summary.txt"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }
has() { [[ ",$STAGES," == *",$1,"* ]]; }

export LIBTORCH_PYTHON=${LIBTORCH_PYTHON:-$(command -v python3)}
export MEDTUNE_PYTHON=${MEDTUNE_PYTHON:-$(command -v python3)}
export MEDTUNE_BUILD_FROM_SOURCE=1 MEDTUNE_BUILD_JOBS=${MEDTUNE_BUILD_JOBS:-$(nproc)} MEDTUNE_SKIP_TYPECHECK=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
python3 -c 'import torch, transformers, peft; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__, "peft", peft.__version__)' > "$OUT/python.txt" 2>&1
note "gpu: $(tail -1 "$OUT/gpu.csv"); $(cat "$OUT/python.txt")"

if has build; then
  t0=$SECONDS
  timeout "${BUILD_TIMEOUT_S:-240}" node scripts/build-addon.mjs > "$OUT/build.log" 2>&1
  note "build: exit $? in $((SECONDS - t0)) s ($(grep -m1 'libtorch' "$OUT/build.log"))"
  node bin/medtune.js doctor --json > "$OUT/doctor.json" 2>&1
  note "doctor: $(node -e 'const d=require(process.argv[1]);console.log(JSON.stringify({variant:d.build?.variant??d.addon?.variant,cuda:d.cuda??d.devices}).slice(0,300))' "$OUT/doctor.json" 2>&1)"
fi

if has tests; then
  t0=$SECONDS
  # CUDA tests (they skip on the CPU), then the mixed-precision parity with both sides on the GPU.
  timeout "${TESTS_TIMEOUT_S:-150}" node scripts/run-tests.mjs test/torch/cuda.test.ts test/train/optim.test.ts test/models/llama.test.ts > "$OUT/tests-cuda.log" 2>&1
  note "cuda tests: exit $? ($(grep -E '^# (pass|fail|skipped)' "$OUT/tests-cuda.log" | tr '\n' ' '))"
  MEDTUNE_TEST_DEVICE=cuda timeout "${TESTS_TIMEOUT_S:-150}" node scripts/run-tests.mjs test/train/mixed-precision.test.ts > "$OUT/tests-amp-cuda.log" 2>&1
  note "bf16/fp16 parity on cuda: exit $? ($(grep -E '^# (pass|fail)' "$OUT/tests-amp-cuda.log" | tr '\n' ' ')) in $((SECONDS - t0)) s"
fi

if has scale; then
  t0=$SECONDS
  left=$(( ${DEADLINE_S:-570} - SECONDS ))
  if [ "$left" -lt 150 ]; then
    note "scale: not started (${left} s left of DEADLINE_S; run again with STAGES=scale)"
  else
    # The checkpoint (~15 GB) goes to local disk, not to $OUT; the table and the logs to $OUT.
    timeout "$left" node --import tsx scripts/scale/llava-med-7b.ts --device cuda --out "$OUT/scale" \
      --checkpoint "${SCALE_CHECKPOINT:-/tmp/llava-med-7b-random}" --methods "${SCALE_METHODS:-ln,attn,ffn,lora}" --budget-s $((left - 100)) > "$OUT/scale.log" 2>&1
    note "scale: exit $? in $((SECONDS - t0)) s"
  fi
  rm -f "$OUT"/scale/batch.*.safetensors
  [ -f "$OUT/scale/scale.md" ] && cat "$OUT/scale/scale.md" >> "$summary"
fi
cat "$summary"
