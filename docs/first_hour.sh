#!/usr/bin/env bash
# A newcomer's first hour, as one script: `make run`, one small command per subcommand, one sweep.
# Its console output, abridged, and the figures are in docs/first_hour.md (figures: docs/gallery/).
#
#   docs/first_hour.sh [RUNS_DIR]      (default runs/first_hour; THREADS=1 by default, FACT_DATA for UCI)
#
# A run already finished in RUNS_DIR is skipped and a finished sweep is reported done, so a rerun
# only makes what is missing. docs/gallery.sh runs this, then copies the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/first_hour}
THREADS="threads=${THREADS:-1}"
FACT=.venv/bin/fact
export FACT_DATA=${FACT_DATA:-$(pwd)/../shared/data}
mkdir -p "$RUNS"

# name, then the command's words: prints the command, its console output and the wall time
run() {
    local name=$1
    shift
    if [ -f "$RUNS/$name/summary.json" ]; then
        echo "== $name: finished earlier in $RUNS/$name (skipped)"
        return
    fi
    echo "== $name: $*"
    local start=$SECONDS
    "$@"
    echo "== $name: $((SECONDS - start)) s"
}

# 1. The main job: FACT-RFM on a generated table where 3 of 16 features carry the label.
run make_run make run ARGS="$THREADS hydra.run.dir=$RUNS/make_run"
# 2. The same on a built-in table where learned features do not help: the console says t = 0 is kept.
run fit_rfm_wine $FACT fit-rfm dataset=wine method=fact "$THREADS" "hydra.run.dir=$RUNS/fit_rfm_wine"
# 3. A small network trained to a critical point, then FACT checked layer by layer.
run train_net $FACT train-net data.train_size=300 data.test_size=200 "model.hidden=[32,32]" "$THREADS" \
    "hydra.run.dir=$RUNS/train_net"
run verify_fact $FACT verify-fact "source=$RUNS/train_net" "verify.heatmap_layers=[1,2]" "$THREADS" \
    "hydra.run.dir=$RUNS/verify_fact"
# 4. Grokking: (a + b) mod 61 with FACT-RFM (test accuracy jumps near iteration 25).
run grokking $FACT grokking p=61 rfm.iters=40 "$THREADS" "hydra.run.dir=$RUNS/grokking"
# 5. Sparse parity: d = 20, k = 3.
run parity $FACT parity d=20 k=3 n=2000 rfm.iters=5 "$THREADS" "hydra.run.dir=$RUNS/parity"
# 6. One sweep: two learners × two seeds on grokking; one figure of every job.
echo "== grokking_sweep: fact grokking -m learner=fact,nfa seed=0,1 p=61 rfm.iters=40"
start=$SECONDS
$FACT grokking -m learner=fact,nfa seed=0,1 p=61 rfm.iters=40 plots=false "$THREADS" \
    "hydra.sweep.dir=$RUNS/grokking_sweep"
echo "== grokking_sweep: $((SECONDS - start)) s"
# 7. Three UCI datasets, FACT-RFM against the Laplace kernel (needs the data root).
run uci_benchmark $FACT fit-rfm benchmark=uci "benchmark.datasets=[balloons,fertility,hepatitis]" \
    "benchmark.methods=[laplace,fact]" "$THREADS" "hydra.run.dir=$RUNS/uci_benchmark"
