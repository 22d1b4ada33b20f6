#!/usr/bin/env bash
# Pre-train candidates for the embedded default encoder on one GPU, side by side, and probe each with the
# unsupervised SimCSE acceptance recipe. Prepared for a short device session (about 6 minutes in all).
#
#   SIMCSE_LAB_DATA=/path/to/data bash recipes/pretrain_default_gpu.sh      # from the repository root
#
# Needs: torch + transformers + tokenizers (no `datasets`), the data folder, and the unsupervised training
# file outputs/data/wiki_wordnet.txt (`simcse-lab prepare-data` writes it). Settings (environment):
#   PRETRAIN_S   training-loop seconds per MLM candidate (default 180; they share the GPU)
#   PROBE_STEPS  SimCSE probe steps (default 600, as in the acceptance command); PROBE_EVAL_STEPS (100)
#   EVAL_TASKS   test tasks reported for each encoder (default: the SentEval seven)
#   RUN_DIR      where everything is written (default outputs/gpu-pretrain)
#   CANDIDATE_FLAGS  replaces the candidates below: lines of "name=pretrain flags" (flags given here win
#                over the time-budget defaults, e.g. "--max_steps 3300" for a step budget)
#   PACK_DIR     if set, the two candidates with the best STS-B *dev* score after SimCSE are tarred there in
#                15 MiB parts (a device's returned files are capped at 16 MiB each), with summary.json
# Candidates (all BERT 4 layers / hidden 256 / 8,192 WordPiece, the shipped shape):
#   cont256    continue the shipped default, batch 256, lr 5e-4 (what the CPU stages did)
#   cont1024   continue the shipped default, batch 1024, lr 5e-4 (4x the tokens per step)
#   scratch1024  from scratch, fresh WordPiece, batch 1024, lr 1e-3
# Checkpoints are chosen on STS-B dev only; test figures are reported, never used to choose.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 \
       TRANSFORMERS_VERBOSITY=error PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
DATA="${SIMCSE_LAB_DATA:?set SIMCSE_LAB_DATA to the data folder}"
RUN="${RUN_DIR:-outputs/gpu-pretrain}"
PRETRAIN_S="${PRETRAIN_S:-180}"
PROBE_STEPS="${PROBE_STEPS:-600}"
PROBE_EVAL_STEPS="${PROBE_EVAL_STEPS:-100}"
EVAL_TASKS="${EVAL_TASKS:-sts12 sts13 sts14 sts15 sts16 stsb sickr}"
TRAIN_FILE=outputs/data/wiki_wordnet.txt
mkdir -p "$RUN"
[ -f "$TRAIN_FILE" ] || "$PY" -m simcse_lab prepare-data --data_dir "$DATA" --output "$TRAIN_FILE" || exit 1

declare -A CANDIDATES=(
  [cont256]="--init_from data/models/bert-mini-mlm --learning_rate 5e-4 --per_device_train_batch_size 256"
  [cont1024]="--init_from data/models/bert-mini-mlm --learning_rate 5e-4 --per_device_train_batch_size 1024"
  [scratch1024]="--learning_rate 1e-3 --per_device_train_batch_size 1024"
)
if [ -n "${CANDIDATE_FLAGS:-}" ]; then
  CANDIDATES=()
  while IFS='=' read -r name flags; do [ -n "$name" ] && CANDIDATES[$name]="$flags"; done <<<"$CANDIDATE_FLAGS"
fi

echo "== MLM pre-training, ${PRETRAIN_S}s each, in parallel: ${!CANDIDATES[*]}"
for name in "${!CANDIDATES[@]}"; do
  # shellcheck disable=SC2086  # the candidate's flags are meant to split
  timeout $((PRETRAIN_S + 240)) "$PY" -m simcse_lab pretrain --data_dir "$DATA" --output_dir "$RUN/$name" \
    --max_steps 0 --time_budget_s "$PRETRAIN_S" --num_threads 4 --no_progress ${CANDIDATES[$name]} \
    >"$RUN/$name.pretrain.log" 2>&1 &
done
wait
for name in "${!CANDIDATES[@]}"; do echo "-- $name"; tail -n 3 "$RUN/$name.pretrain.log"; done

probe() {  # raw dev/test, unsupervised SimCSE with the acceptance settings, then its dev/test
  local name=$1 model="$RUN/$1"
  [ -f "$model/model.safetensors" ] || { echo "$name: no checkpoint"; return 1; }
  "$PY" -m simcse_lab evaluate --model_name_or_path "$model" --pooler avg --mode dev --tasks stsb --data_dir "$DATA" \
    --output "$RUN/$name.raw.dev.json" >>"$RUN/$name.eval.log" 2>&1
  # shellcheck disable=SC2086
  "$PY" -m simcse_lab evaluate --model_name_or_path "$model" --pooler avg --mode test --tasks $EVAL_TASKS \
    --data_dir "$DATA" --output "$RUN/$name.raw.test.json" >>"$RUN/$name.eval.log" 2>&1
  "$PY" -m simcse_lab train --model_name_or_path "$model" --train_file "$TRAIN_FILE" --output_dir "$RUN/$name-unsup" \
    --max_steps "$PROBE_STEPS" --per_device_train_batch_size 64 --learning_rate 1e-4 --pooler_type avg \
    --max_seq_length 32 --eval_steps "$PROBE_EVAL_STEPS" --seed 42 --data_dir "$DATA" --overwrite_output_dir \
    --no_progress >"$RUN/$name.unsup.log" 2>&1 || { tail -n 5 "$RUN/$name.unsup.log"; return 1; }
  "$PY" -m simcse_lab evaluate --model_name_or_path "$RUN/$name-unsup" --pooler avg --mode dev --tasks stsb \
    --data_dir "$DATA" --output "$RUN/$name.unsup.dev.json" >>"$RUN/$name.eval.log" 2>&1
  # shellcheck disable=SC2086
  "$PY" -m simcse_lab evaluate --model_name_or_path "$RUN/$name-unsup" --pooler avg --mode test --tasks $EVAL_TASKS \
    --data_dir "$DATA" --output "$RUN/$name.unsup.test.json" >>"$RUN/$name.eval.log" 2>&1
}
echo "== SimCSE probes (${PROBE_STEPS} steps, batch 64, lr 1e-4, avg, fp32), in parallel"
for name in "${!CANDIDATES[@]}"; do probe "$name" & done
wait

"$PY" - "$RUN" "${PACK_DIR:-}" <<'EOF'
"""Summarise the candidates; rank them on STS-B dev after SimCSE; pack the best two if asked."""
import json, subprocess, sys
from pathlib import Path

run, pack = Path(sys.argv[1]), sys.argv[2]
def score(path, task="stsb"):
    return json.loads(path.read_text())["results"].get(task) if path.is_file() else None
rows = []
for log in sorted(run.glob("*/pretrain_log.json")):
    name, info = log.parent.name, json.loads(log.read_text())
    result = info.get("result", info.get("stages", [{}])[-1].get("result", {}))
    row = {"name": name, "steps": result.get("steps"), "epochs": result.get("epochs"),
           "heldout_loss": result.get("heldout_loss"), "wall_s": result.get("wall_time_s")}
    for kind in ("raw", "unsup"):
        row[f"{kind}_dev"] = score(run / f"{name}.{kind}.dev.json")
        test = run / f"{name}.{kind}.test.json"
        row[f"{kind}_test"] = json.loads(test.read_text())["results"] if test.is_file() else None
    rows.append(row)
for row in rows:
    raw_t, uns_t = (row["raw_test"] or {}).get("stsb"), (row["unsup_test"] or {}).get("stsb")
    print(f"{row['name']:>12}: steps {row['steps']} epochs {row['epochs']} heldout {row['heldout_loss']} | "
          f"STS-B dev raw {row['raw_dev']} -> unsup {row['unsup_dev']} | test raw {raw_t} -> unsup {uns_t}")
ranked = sorted((r for r in rows if r["unsup_dev"] is not None), key=lambda r: -r["unsup_dev"])
(run / "summary.json").write_text(json.dumps({"ranked_on": "STS-B dev after SimCSE", "rows": rows}, indent=1))
if pack:
    out = Path(pack); out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text((run / "summary.json").read_text())
    for row in ranked[:2]:
        name = row["name"]
        subprocess.run(f"tar -C {run} -cf - --exclude=_wordpiece {name} | split -b 15M - {out}/{name}.tar.part",
                       shell=True, check=True)
    print("packed:", [r["name"] for r in ranked[:2]])
EOF
