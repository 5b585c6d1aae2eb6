#!/usr/bin/env bash
# One command for a bare GPU machine that has torch but no network and no pip install:
#   bash benchmarks/gpu_check.sh [DATASETS_DIR]
# Runs from the source tree (PYTHONPATH=src). DATASETS_DIR (default .gpu/datasets) holds a copy of
# ../shared/datasets (prepare.py, mnist/, cifar10-jpg.tar.gz, ...); it is unpacked to /tmp/trainlab-data.
# Then: the GPU tests, the whole suite, the GPU benchmark, airbench94 against cifar10-fast (with the
# airbench wheel from .whl/ if there is one); one table at the end, JSON in
# benchmarks/results/. Without CUDA it says so and exits 0 after the CPU part (the GPU tests skip).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
datasets="${1:-.gpu/datasets}"
export TRAINLAB_DATA="${TRAINLAB_DATA:-/tmp/trainlab-data}"
log="benchmarks/results/gpu_check.log"
: > "$log"
step() {  # step NAME TIMEOUT_S COMMAND...: run, log, remember the status
    local name="$1" limit="$2"; shift 2
    echo "== $name" | tee -a "$log"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" = 0 ] || failed=$((failed + 1))
    results+=("$(printf '%-28s %-6s %5ss' "$name" "$([ "$rc" = 0 ] && echo ok || echo "rc=$rc")" $((SECONDS - start)))")
}
results=()
failed=0
if [ -f "$datasets/prepare.py" ]; then
    step "prepare datasets" 300 python3 "$datasets/prepare.py" "$TRAINLAB_DATA"
else
    echo "no $datasets/prepare.py: tests needing real data use TRAINLAB_DATA=$TRAINLAB_DATA as it is" | tee -a "$log"
fi
cuda=$(python3 -c "import torch; print(int(torch.cuda.is_available()))")
if [ "$cuda" = 1 ]; then
    python3 -c "import torch; print('GPU:', torch.cuda.get_device_name(0), 'torch', torch.__version__)" | tee -a "$log"
    step "GPU tests (tests/gpu)" 900 python3 -m pytest -q -p no:cacheprovider tests/gpu
else
    echo "no CUDA GPU here: running the CPU part only (the GPU tests skip)" | tee -a "$log"
fi
step "whole suite" 1800 python3 -m pytest -q -p no:cacheprovider -x
if [ "$cuda" = 1 ]; then
    step "GPU benchmark (amp x graph)" 1200 python3 benchmarks/gpu_bench.py
    if ls .whl/airbench-*.whl >/dev/null 2>&1; then  # the wheel travels in .whl/ (ignored by git)
        python3 -m pip install --no-index --no-deps --quiet --target /tmp/site .whl/airbench-*.whl \
            && export PYTHONPATH="/tmp/site:$PYTHONPATH"
    fi
    step "airbench94 vs cifar10-fast" 900 python3 benchmarks/airbench_vs_trainlab.py
fi
echo
echo "== summary"
printf '%s\n' "${results[@]}" | tee -a "$log"
if [ -f benchmarks/results/gpu_bench.json ] && [ "$cuda" = 1 ]; then
    python3 - <<'PY' | tee -a "$log"
import json
d = json.load(open("benchmarks/results/gpu_bench.json"))
print(f"GPU benchmark on {d['device']} (torch {d['torch']}):")
for r in d["rows"]:
    ratio = f"  {r['speedup_vs_eager']}x vs eager" if r.get("speedup_vs_eager") else ""
    print(f"  {r['recipe']:<15} amp={r['amp']:<5} graph={r['graph']:<5} steady {r['steady_epoch_s']:.4f} s/epoch"
          f"  {r['samples_per_s']} samples/s  acc {r['accuracy']}{ratio}")
PY
fi
[ "$failed" = 0 ] && echo "all steps passed" || echo "$failed step(s) failed"
exit $((failed > 0))
