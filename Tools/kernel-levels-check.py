#!/usr/bin/env python3
"""Same seed, same bits at every kernel level: trains SimpleConvNet and DeepConvNet for one epoch of
mnist5k at PRECIS_KERNELS=avx512, avx2 and portable, and compares every dataset and attribute of the
written files with h5py, bit for bit (only wall times and the creation time may differ).

    python3 Tools/kernel-levels-check.py --precis .build/release/precis [--deep-levels avx512,avx2]

The portable level computes each float32 fused multiply-add in double, about 15 times slower than
AVX2: a DeepConvNet epoch takes minutes there, so `--deep-levels` can leave it out (the unit tests,
run at every level, check its GEMMs bit for bit, and SimpleConvNet still trains at all three).

A level the CPU lacks runs as the highest level it has; the script says which levels really ran.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

LEVELS = ["avx512", "avx2", "portable"]
# What a run measures about the machine, not about the network.
TIMES = {"epoch_seconds", "seconds", "created_at"}


def cpu_levels():
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    avx2 = {"avx2", "fma", "f16c"} <= flags
    avx512 = avx2 and {"avx512f", "avx512bw", "avx512vl"} <= flags
    return [level for level, ran in zip(LEVELS, [avx512, avx2, True]) if ran]


def contents(path):
    """Every dataset's bytes and every attribute, by path, leaving out wall times."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if name.split("/")[-1] in TIMES:
                return
            if isinstance(obj, h5py.Dataset):
                out[name] = (obj.dtype.str, obj.shape, np.asarray(obj[()]).tobytes())
            for key, value in obj.attrs.items():
                if key not in TIMES:
                    out[f"{name}@{key}"] = repr(np.asarray(value).tobytes() if isinstance(value, np.ndarray) else value)
        visit("", f)
        f.visititems(visit)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precis", default=".build/release/precis")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--deep-levels", default=",".join(LEVELS), help="the levels DeepConvNet trains at")
    args = parser.parse_args()
    deep_levels = [level for level in LEVELS if level in args.deep_levels.split(",")]
    ran = cpu_levels()
    lacking = [level for level in LEVELS if level not in ran]
    print(f"kernel levels this CPU runs: {', '.join(ran)}"
          + (f"; {', '.join(lacking)} runs as {ran[0]}" if lacking else ""))
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for model in ["simple", "deep"]:
            files = {}
            levels = deep_levels if model == "deep" else LEVELS
            for level in levels:
                out = os.path.join(tmp, f"{model}-{level}.h5")
                subprocess.run(
                    [args.precis, "train", "--model", model, "--dataset", "mnist5k", "--epochs", str(args.epochs),
                     "--quiet", "--output", out],
                    check=True, env={**os.environ, "PRECIS_KERNELS": level}, stdout=subprocess.DEVNULL)
                files[level] = contents(out)
            reference = files[levels[0]]
            for level in levels[1:]:
                differing = sorted(k for k in set(reference) | set(files[level])
                                   if reference.get(k) != files[level].get(k))
                failures += len(differing)
                verdict = "identical" if not differing else f"{len(differing)} differ: {', '.join(differing[:5])}"
                print(f"{model}: {levels[0]} vs {level}: {len(reference)} datasets and attributes, {verdict}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
