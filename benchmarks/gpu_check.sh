#!/usr/bin/env bash
# GPU check (issue 15): the solver / plan / sparse tests under the real GPU backend, then the
# benchmark at GPU sizes (W1M and W2, about 5 minutes), the targets of benchmarks/README.md
# checked and printed (met / not met). Writes benchmarks/results/gpu-check-<device>.{json,md,txt}.
# Needs jax with CUDA already installed (the GPU machine carries its own jax: do not pip
# install jax there). Exit status: non-zero if a test fails or the benchmark crashes (targets
# not met are reported, not an error).
#
# GPU_CHECK_DRY_RUN=1 runs the same steps on the CPU at the quick sizes (~45 s), to check the
# script itself on a machine without a GPU: run it after changing this file (the test suite
# runs the benchmark's parts and the targets' checker, tests/test_benchmarks_quick.py, but not
# this script: 45 s more for a suite over its time budget).
set -u -o pipefail
cd "$(dirname "$0")/.."
DRY=${GPU_CHECK_DRY_RUN:-0}
# The GPU machines here have `python3` (the environment holding JAX with CUDA) and no `python`.
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif command -v python >/dev/null 2>&1; then PY=python
else PY=python3
fi

# Tests marked `cpu_plan` (chunk sizes and host threads of the CPU's plan) skip themselves
# under a GPU plan (tests/conftest.py). The dry run's tests run under the GPU's plans
# (`JAXMDP_PLAN_BACKEND=gpu`), as on the GPU; its benchmark keeps the CPU's.
TEST_ENV=()
if [ "$DRY" = 1 ]; then
  export JAX_PLATFORMS=cpu
  DEVICE_ARGS=(--device cpu --quick)
  TESTS=(tests/test_shared_tiles.py tests/test_sweep.py)
  TEST_ENV=(JAXMDP_PLAN_BACKEND=gpu)
  OUTDIR=${GPU_CHECK_OUT:-$(mktemp -d)}
else
  DEVICE_ARGS=(--device gpu)
  mapfile -t TESTS < <(grep -v '^#' benchmarks/gpu_tests.txt)
  OUTDIR=${GPU_CHECK_OUT:-benchmarks/results}
fi
mkdir -p "$OUTDIR"

KIND=$("$PY" -c 'import jax; d = jax.devices()[0]; print(d.platform, d.device_kind)') || exit 2
read -r PLATFORM DEVNAME <<<"$KIND"
if [ "$DRY" != 1 ] && [ "$PLATFORM" = cpu ]; then
  echo "gpu_check: JAX sees no accelerator (jax.devices() is CPU only)" >&2
  exit 2
fi
SLUG=$(echo "$DEVNAME" | tr 'A-Z ' 'a-z-' | tr -cd 'a-z0-9-')
BASE="$OUTDIR/gpu-check-$SLUG"
REPORT="$BASE.txt"
{
  echo "gpu_check on $DEVNAME ($PLATFORM), $(date -u +%FT%TZ)"
  "$PY" -c 'import jax, jaxmdp; print("jax", jax.__version__, "jaxmdp", jaxmdp.__version__)' || true
} | tee "$REPORT"

# Test files on several pytest-xdist workers where it is installed (the GPU machines have it):
# the five files are ~2,000 compiles, one process would not finish them in the 300 s. Each
# worker allocates GPU memory as it needs it, not JAX's default 75% of the device each.
XDIST=()
if "$PY" -c 'import xdist' >/dev/null 2>&1; then
  if [ "$DRY" = 1 ]; then XDIST=(-n 2 --dist loadfile); else XDIST=(-n 4 --dist loadfile); fi
fi
echo "== tests: ${TESTS[*]} ${XDIST[*]}" | tee -a "$REPORT"
env "${TEST_ENV[@]}" XLA_PYTHON_CLIENT_PREALLOCATE=false timeout 300 "$PY" -m pytest -q \
  -p no:cacheprovider -rs "${XDIST[@]}" "${TESTS[@]}" 2>&1 | tail -n 25 | tee -a "$REPORT"
TESTS_RC=${PIPESTATUS[0]}

echo "== benchmark: W1M, W2 (${DEVICE_ARGS[*]})" | tee -a "$REPORT"
timeout 420 "$PY" -m benchmarks.run "${DEVICE_ARGS[@]}" --workloads W1M,W2 \
  --skip peers,kernels,scaling,acceleration,sweep --out "$BASE.json" >"$BASE.log" 2>&1
BENCH_RC=$?
tail -n 5 "$BASE.log" | tee -a "$REPORT"

echo "== targets" | tee -a "$REPORT"
if [ "$BENCH_RC" = 0 ]; then
  "$PY" -m benchmarks.gpu_targets "$BASE.json" | tee -a "$REPORT"
else
  echo "benchmark failed (exit $BENCH_RC): targets not measured" | tee -a "$REPORT"
fi
echo "tests exit $TESTS_RC, benchmark exit $BENCH_RC; report $REPORT" | tee -a "$REPORT"
[ "$TESTS_RC" = 0 ] && [ "$BENCH_RC" = 0 ]
