#!/usr/bin/env bash
# GPU speed check, prepared for a session that has a GPU: at most ~4 minutes of device time.
#
#   bash benchmarks/gpu/run.sh            # from the repository root, on the GPU machine
#
# Needs only torch, transformers and sentence-transformers on the device; simcse_lab runs from this
# checkout (PYTHONPATH), nothing is installed. Optional extras, both git-ignored, passed with carry:
#   benchmarks/gpu/data/wiki/wiki1m_head.txt   real sentences (cp ../shared/data/wiki/wiki1m_head.txt);
#                                               without it: random words with the same length range
#   benchmarks/gpu/wheels/                      wheels of `datasets` and those of its dependencies the
#                                               device lacks (dill, multiprocess), for the
#                                               SentenceTransformerTrainer rows; without them those rows
#                                               print "skipped" and the hand loop + MNRL is the baseline:
#       pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#           --platform manylinux2014_x86_64 -d benchmarks/gpu/wheels datasets dill multiprocess
#                                               (match the device's python; installed with --no-deps)
# Results: the table on stdout and JSON in $OUT (the device's returned folder) or benchmarks/results.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
RESULTS="${OUT:-benchmarks/results}"
mkdir -p "$RESULTS"
PY="${PYTHON:-python}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import torch, transformers, sentence_transformers as st; print('torch', torch.__version__, 'transformers', transformers.__version__, 'sentence-transformers', st.__version__)"
if [ -d benchmarks/gpu/wheels ]; then  # no dependency resolution: the device's own numpy/pyarrow/... are used
  if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/simcse_lab_wheels \
       benchmarks/gpu/wheels/*.whl; then
    export PYTHONPATH="$PYTHONPATH:/tmp/simcse_lab_wheels"
  else
    echo "wheel install failed: the SentenceTransformerTrainer rows will be skipped"
  fi
fi
# 1) eager: simcse_lab trainer (transformers' BERT forward, then simcse_lab's own: --bert_forward auto own) vs
#    SentenceTransformerTrainer vs hand loop (batch 64, 512), cached loss, encode
timeout 170 "$PY" benchmarks/speed.py --mode gpu --output "$RESULTS/speed_gpu.json" 2>&1 | grep -v -i -E "warn|it/s\]" \
  || echo "speed.py --mode gpu failed or ran out of time"
# 2) the optional torch.compile path of the trainer (simcse_lab rows only), if the time allows. COMPILE_MODE:
#    reduce-overhead (the default here: CUDA graphs, one per batch width) or default (plain inductor; session 3's row)
timeout 60 "$PY" benchmarks/speed.py --mode gpu --only simcse_lab --bert_forward auto --batch_sizes 64 --compile --compile_mode "${COMPILE_MODE:-reduce-overhead}" \
  --output "$RESULTS/speed_gpu_compile.json" 2>&1 \
  | grep -v -i -E "warn|it/s\]" || echo "compiled run did not finish in 60 s (compile time); not a failure"
