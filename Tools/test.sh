#!/usr/bin/env bash
# The test command: installs what is missing (Tools/setup.sh), checks the house style
# (`swift format lint --strict`, configured by .swift-format), builds the DocC articles (failing on a
# broken link or symbol), runs the unit tests in release (numeric code is far too slow unoptimized)
# at every vector-kernel level the CPU has, the build for any x86-64 CPU, a package that depends on
# Precis by version, the end-to-end command-line check, the write-safety check (concurrent writers,
# interrupts, full disk, read-only folder), the picture report in headless Chromium, the
# independent h5py/numpy cross-check of every shipped weight file, the training bits at every
# kernel level, the README's tour, a fuzz of the command line, and a fuzz check of damaged weight
# and data files that also checks the answers of every damaged copy that loads.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Tools/setup.sh
python3 -c 'import h5py, numpy, onnx, onnxruntime, ml_dtypes' 2>/dev/null \
  || python3 -m pip install --quiet h5py numpy onnx onnxruntime ml_dtypes
# PyTorch for the import check: the CPU wheel on the machine when there is one, else PyPI's.
torch_wheel=$(ls /opt/wheels/torch-*cpu*.whl 2> /dev/null | head -n 1 || true)
python3 -c 'import torch, onnxscript' 2>/dev/null || python3 -m pip install --quiet "${torch_wheel:-torch}" onnxscript
KERAS_BACKEND=torch python3 -c 'import keras' 2>/dev/null || python3 -m pip install --quiet keras
swift format lint --strict --recursive Sources Tests
# swift format leaves long string literals alone: no source line may pass 120 columns (counted in UTF-8
# bytes, so an arrow or a minus sign counts as the several bytes it takes).
python3 - <<'PY'
import glob, sys
# Generated code (Sources/*/Generated, from Tools/gen-onnx-proto.sh) is left as protoc writes it.
files = sorted(p for p in glob.glob("Sources/**/*.swift", recursive=True) + glob.glob("Tests/**/*.swift", recursive=True)
               if "/Generated/" not in p)
long = [f"{p}:{i + 1}" for p in files + ["Package.swift"]
        for i, line in enumerate(open(p, encoding="utf-8").read().split("\n")) if len(line.encode()) > 120]
print("\n".join(f"line over 120 bytes: {x}" for x in long), file=sys.stderr)
sys.exit(1 if long else 0)
PY
bash Tools/docs.sh
swift test -c release -Xswiftc -enable-testing
# Again with the narrower vector kernels (a lower level gives the same values wherever it runs).
for level in avx2 portable; do PRECIS_KERNELS=$level swift test -c release -Xswiftc -enable-testing --skip-build; done
# Any x86-64 CPU: vector instructions only in the C kernels, and a run on valgrind's AVX2 CPU.
python3 Tools/portable-check.py --precis .build/release/precis
bash Tools/example-check.sh
python3 Tools/kernel-levels-check.py --precis .build/release/precis --deep-levels avx512,avx2
bash Tools/cli-check.sh .build/release/precis
bash Tools/tour-check.sh .build/release/precis
# 2,000 random command lines: 0 signals or traps, 0 Swift runtime errors, every failure one clear line.
python3 Tools/fuzz-cli.py --precis .build/release/precis --runs 2000
bash Tools/write-safety-check.sh .build/release/precis
for f in Weights/*.h5; do python3 Tools/page-check.py "$f" --precis .build/release/precis; done
for f in Weights/*.h5; do
  [ -e "$f" ] || continue
  python3 Tools/crosscheck.py "$f" --precis .build/release/precis --float16 1000 --format-images 1000
  python3 Tools/onnx-check.py "$f" --precis .build/release/precis
done
python3 Tools/torch-onnx-check.py --precis .build/release/precis
python3 Tools/keras-check.py --precis .build/release/precis
python3 Tools/formats-check.py --precis .build/release/precis
# GPTQ's codes on every layer of DeepConvNet, int4 and FP8: 0 differ from an independent numpy GPTQ.
python3 Tools/gptq-check.py --precis .build/release/precis
# Cross-layer equalization on DeepConvNet and ResNet-20: the closed-form scales in numpy, the same logits.
python3 Tools/cle-check.py --precis .build/release/precis
# 420 damaged copies: 0 crashes, 0 unclear exits and 0 answers that differ from the intact file's.
python3 Tools/fuzz-weights.py Weights/simple-mnist5k.h5 --trials 200 --precis .build/release/precis
python3 Tools/fuzz-weights.py Weights/deep-fashion.h5 --precision float32,int8-wchannel-au8z --trials 120 \
  --precis .build/release/precis
python3 Tools/fuzz-weights.py Weights/deep-fashion.h5 --precision float8-e4m3,mxfp4,nvfp4,int4-g32,search-bits4.5 --trials 60 \
  --precis .build/release/precis
python3 Tools/fuzz-weights.py Weights/deep-fashion.h5 --data /usr/share/datasets/fashion-mnist --trials 40 \
  --precis .build/release/precis
