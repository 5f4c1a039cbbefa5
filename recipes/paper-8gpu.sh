#!/usr/bin/env bash
# Run a recipe on one node, scoring each iteration's teacher prompts in one shard per GPU.
#
#   recipes/paper-8gpu.sh DATA [RUN_DIR]
#
# DATA: a BEIR folder (adapts on its qrels/train.tsv queries, evaluates on qrels/test.tsv).
# Environment: GPUS (default 8), RECIPE (default: paper-8gpu.toml beside this script),
# ITERATIONS (default 2), ADAPT (the adapt command, default "adapt").
#
# For each iteration k: the run goes up to iteration k-1 (trained and evaluated); each shard
# starts from a hard-linked copy of it, retrieves, scores its share of iteration k's prompts on
# its own GPU into its own cache, and stops; the caches are merged into the run's. The last call
# trains the final iteration and evaluates it without scoring anything again. Every step is
# resumable: rerun the script after a failure and finished work is kept.
set -euo pipefail

data=${1:?usage: $0 DATA [RUN_DIR]}
run=${2:-runs/paper-8gpu}
gpus=${GPUS:-8}
recipe=${RECIPE:-$(dirname "$0")/paper-8gpu.toml}
iterations=${ITERATIONS:-2}
read -r -a adapt <<< "${ADAPT:-adapt}"
# Private caches: each shard writes its own file (eight writers on one SQLite file would queue),
# merged into the run's own.
args=(--recipe "$recipe" --corpus "$data" --queries "$data" --queries-split train
      --qrels "$data/qrels/test.tsv" --private-cache)

for k in $(seq 1 "$iterations"); do
    "${adapt[@]}" run "${args[@]}" --run-dir "$run" --iterations $((k - 1))
    pids=()
    for i in $(seq 1 "$gpus"); do
        shard="$run.shard-$i"
        rm -rf "$shard"
        cp -al "$run" "$shard"  # hard links: every file adapt writes is replaced, never edited
        rm -f "$shard"/teacher-cache.sqlite* "$shard/.lock"
        CUDA_VISIBLE_DEVICES=$((i - 1)) "${adapt[@]}" run "${args[@]}" --run-dir "$shard" \
            --iterations "$k" --shard "$i/$gpus" > "$shard.log" 2>&1 &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || { echo "shard $((i + 1)) failed: $run.shard-$((i + 1)).log" >&2; exit 1; }
    done
    "${adapt[@]}" merge --into "$run/teacher-cache.sqlite" "$run".shard-*/teacher-cache.sqlite
    rm -rf "$run".shard-*
done
"${adapt[@]}" run "${args[@]}" --run-dir "$run" --iterations "$iterations"
