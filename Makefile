# Every target runs inside the project's own virtual environment, made by `make install`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: install test test-fast lint smoke bench field clean tf-free-env

install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,jax,export,postgres,mlflow]"  # JAX's CPU wheel: the tests run on both backends
	# pip compiles what it installs, not an editable install's own source: compiled once here,
	# dltrain's modules are not compiled again by each command where PYTHONDONTWRITEBYTECODE is
	# set (as on this project's machines; Python still reads the files, and recompiles an edited
	# module in memory).
	$(BIN)/python -m compileall -q dltrain

# A second environment without TensorFlow, like the GPU machines': dltrain's dependencies except
# tensorflow and tensorboard, plus JAX and PyTorch. tests/test_tf_free.py runs the CLI in it, and
# tests/test_backends_e2e.py its PyTorch runs (both skip, saying why, without it). TORCH is pinned
# to the release whose CPU build lies on this project's machines (pip finds it there); elsewhere
# pip takes PyPI's build of it, with CUDA (several GB): pass TORCH= another spec to choose.
TF_FREE_VENV ?= .venv-tf-free
TORCH ?= torch==2.13.0
tf-free-env:
	$(PYTHON) -m venv $(TF_FREE_VENV)
	$(TF_FREE_VENV)/bin/pip install --quiet --upgrade pip
	$(PYTHON) tools/tf_free_requirements.py > $(TF_FREE_VENV)/requirements.txt
	$(TF_FREE_VENV)/bin/pip install --quiet -r $(TF_FREE_VENV)/requirements.txt "$(TORCH)"
	$(TF_FREE_VENV)/bin/pip install --quiet --no-deps -e .

# pytest-xdist runs the tests in TEST_JOBS processes, each module's tests in one of them (so a
# module-scoped run is trained once). Most of a test is one thread of Python: on a shared 2-core
# machine two processes took a quarter (fits) to half (test-fast) less wall time than one.
# TEST_JOBS=auto uses every core (each process holds Keras, about 1 GB); TEST_JOBS=0 runs the
# tests in pytest's own process.
TEST_JOBS ?= 2
PYTEST_JOBS = -n $(TEST_JOBS) --dist loadscope --no-loadscope-reorder

test:
	$(BIN)/python -m pytest -q $(PYTEST_JOBS)

# Everything but what takes seconds (marked slow: end-to-end fits, Keras processes, sizes that are
# the point): under a minute on 2 cores.
test-fast:
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_JOBS)

lint:
	$(BIN)/ruff check dltrain tests bench tools
	$(BIN)/mypy dltrain
	$(BIN)/python tools/check_layers.py
	$(BIN)/python tools/check_house.py

# `dltrain show` and a --smoke fit of every shipped config, on local data.
smoke:
	$(BIN)/python -m pytest -q tests/test_shipped_configs.py

bench:
	$(BIN)/python bench/run.py

clean:
	rm -rf $(TF_FREE_VENV) runs .pytest_cache .mypy_cache .ruff_cache

# Every capability once at the shipped sizes through the real CLI (tools/field.py): not in CI,
# 2-6 minutes on 2 cores; run it before calling a training, data, backend or report path done.
field:
	$(BIN)/python tools/field.py
