#!/usr/bin/env bash
# Here, before a GPU call: the wheels the GPU machine lacks (cp312, manylinux) into .whl/ and the
# real Fashion-MNIST IDX files (Debian's dataset-fashion-mnist) into .gpu-data/. Both folders are
# git-ignored; the device call carries them: carry [".whl", ".gpu-data"].
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .whl && mkdir -p .whl .gpu-data
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl \
  keras==3.15.1 namex optree "pydantic>=2.6,<3" pydantic-core annotated-types typing-inspection \
  "typing-extensions>=4.16"
# pydantic pins its core exactly: keep only the matching one.
core=$(unzip -p .whl/pydantic-2*.whl '*/METADATA' | sed -n 's/^Requires-Dist: pydantic-core==//p')
find .whl -name 'pydantic_core-*' ! -name "pydantic_core-${core}-*" -delete
cp -r /usr/share/datasets/fashion-mnist .gpu-data/
du -sh .whl .gpu-data
