#!/usr/bin/env bash
# On the GPU machine (Python 3.12 with JAX, no TensorFlow, no network): install the wheels that
# bench/gpu/prepare.sh left in .whl/, then run the benchmark with the Fashion-MNIST files it
# left in .gpu-data/. Results go to ${OUT:-bench-gpu-out}/.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
python3 bench/gpu/bench.py "${OUT:-bench-gpu-out}" --backend jax --data .gpu-data/fashion-mnist "$@"
