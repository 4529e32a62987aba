#!/usr/bin/env python3
"""Fuzzes the precis command line: random subcommands with random combinations of options and
values (good ones, repeated ones, out-of-range numbers, odd strings, paths of every kind), each run
on fresh copies of a small weight file. Every run must end with an exit code below 128 (no signal,
no trap) and without a Swift runtime error; a failed run must say why in one `precis: error:` line.

    python3 Tools/fuzz-cli.py --precis .build/release/precis --runs 2000 [--seed 1]

Runs two at a time; each has a time limit, and the commands are kept small (few images, tiny
networks) so that most runs reach the work they would do.
"""
import argparse
import concurrent.futures
import os
import random
import shutil
import subprocess
import sys
import tempfile

import numpy as np

NUMBERS = ["0", "-1", "1", "2", "5", "100", "9223372036854775808", "1e309", "nan", "-0", "0.5", "", "x", "1,1"]
PRECISIONS = ["float64", "float32", "float16", "float16-acc32", "bfloat16", "bfloat16-acc32", "int8", "mxfp4",
              "nvfp4", "int4-g32", "float8-e4m3", "int8-wchannel-au8z", "mxfp4-cle", "all", "float8", "float16,float16",
              "bfloat16,bfloat16-acc32", "int8,int8", "mxfp4,mxfp4", ",", ""]
SCHEMES = ["wchannel-au8z", "wtensor-as8", "all", "wchannel-au8z,wchannel-au8z", "w4", ""]
METHODS = ["minmax", "mse", "entropy", "percentile", "all", "mse,mse", "kl", ""]
MODELS = ["simple", "conv(2,3) relu maxpool(2) affine(10)", "affine(10)", "conv(0,5) affine(10)", "maxpool(0)",
          "conv(2,3,pad=9) affine(10)", "bogus(1)", "relu", "conv(2,3", "deep", ""]


def paths(work):
    return [f"{work}/w.h5", f"{work}/w.h5", f"{work}/new.h5", f"{work}/dir", f"{work}/garbage.h5", "/dev/null",
            f"{work}/missing/x.h5", "", f"{work}/link.h5", f"{work}/ro.h5", f"{work}/out", f"{work}/w.h5/x"]


def options(command, work):
    """The options of `command` with the values the fuzzer draws from."""
    p = paths(work)
    common = {"--quiet": None, "--json": None, "--force": None}
    sample = {"--limit": NUMBERS, "--first": NUMBERS, "--seed": NUMBERS, "--dataset": ["mnist5k", "cifar10", ""],
              "--data": [f"{work}/dir", "/nonexistent", "/usr/share/datasets/fashion-mnist"]}
    return {
        "train": {**common, "--model": MODELS, "--epochs": ["1", "0", "-1", "x"], "--batch-size": NUMBERS,
                  "--optimizer": ["sgd", "momentum", "adam", "adamw"], "--lr": NUMBERS, "--learning-rate": NUMBERS,
                  "--lr-schedule": ["constant", "step:1:0.5", "step:0:0.5", "step:1:inf", "x"],
                  "--seed": NUMBERS, "--init": ["he", "xavier", "normal:0.1", "normal:0", "normal:1e300", "glorot"],
                  "--augment": ["shift:2", "shift:28", "rotate:-10", "crop:14", "flip", "shift:2,shift:2", ""],
                  "--precision": ["float32", "float16", "mixed-float16", "float8"], "--loss-scale": NUMBERS,
                  "--output": p, "--no-output": None, "--checkpoint": p, "--resume": p, "--from": p,
                  "--qat": ["int8", "mxfp4", "int9"], "--qat-warmup": NUMBERS, "--calibration": METHODS,
                  "--learn-scales": None,
                  "--eval-sample": NUMBERS, "--report": p, "--dataset": ["mnist5k", "cifar10"]},
        "eval": {**common, **sample, "--precision": PRECISIONS, "--explain": PRECISIONS, "--input-scale": NUMBERS,
                 "--save-logits": p, "--record": None, "--report": p},
        "quantize": {**common, **sample, "--compare": None, "--scheme": SCHEMES, "--calibration": METHODS,
                     "--calibration-size": NUMBERS, "--percentile": NUMBERS,
                     "--format": ["mxfp4", "int4-g32", "nvfp4-cle", "x"],
                     "--dynamic": None, "--sensitivity": None, "--max-drop": NUMBERS, "--bias-correction": None,
                     "--fallback": ["float32", "float16", "float8"], "--record": None,
                     "--rounding": ["nearest", "x"], "--equalize": None, "--bootstrap": NUMBERS,
                     "--budget": NUMBERS, "--candidates": ["int8,mxfp4", "float16,int9", "float32", ""]},
        "report": {**sample, "--quiet": None, "--force": None, "--output": p},
        "export": {"--precision": ["float16", "bfloat16", "float32", "int8-wchannel-au8z", "x"], "--onnx": p,
                   "--force": None},
        "import": {"--model": MODELS, "--dataset": ["mnist5k", "cifar10"], "--data": p, "--output": p,
                   "--force": None, "--input-shape": ["1,28,28", "0,1,1", "x"], "--attribution": ["", "x"]},
        "inspect": {"--json": None},
        "upgrade": {},
        "formats": {"--encode": ["e4m3", "e2m1", "x"], "--input": p, "--output": p, "--saturate": None,
                    "--json": None, "--force": None},
        "help": {},
    }[command]


def command_line(rng, work):
    command = rng.choice(["train", "eval", "eval", "quantize", "report", "export", "import", "inspect", "upgrade",
                          "formats", "help"])
    args = [command]
    if command in ("eval", "quantize", "report", "export", "inspect", "upgrade", "import"):
        args.append(rng.choice(paths(work) + [f"{work}/book.npz"] * 3))
    table = options(command, work)
    for name in rng.sample(sorted(table), min(len(table), rng.randint(0, 5))):
        values = table[name]
        args += [name] if values is None else [name, rng.choice(values)]
    if command in ("eval", "quantize", "report") and rng.random() < 0.9:
        args += ["--first", "20"]
    if command == "quantize" and rng.random() < 0.9:
        args += ["--calibration-size", "20"]
    if command == "train" and rng.random() < 0.9:
        args += ["--epochs", "1", "--eval-sample", "20"]
    if command == "help":
        args += rng.sample(["train", "eval", "nonexist", "formats", "--help", ""], rng.randint(0, 2))
    return args


def setup(work, weights, npz):
    os.makedirs(f"{work}/dir", exist_ok=True)
    shutil.copy(weights, f"{work}/w.h5")
    shutil.copy(weights, f"{work}/ro.h5")
    os.chmod(f"{work}/ro.h5", 0o444)
    shutil.copy(npz, f"{work}/book.npz")
    with open(f"{work}/garbage.h5", "wb") as f:
        f.write(b"garbage" * 100)
    os.symlink("w.h5", f"{work}/link.h5")


def run(precis, seed, weights, npz, limit):
    """Runs the command line drawn from `seed` in a fresh folder: (its arguments, exit code or None
    past the time limit, stderr)."""
    with tempfile.TemporaryDirectory() as work:
        setup(work, weights, npz)
        line = command_line(random.Random(seed), work)
        try:
            r = subprocess.run([precis] + line, capture_output=True, text=True, timeout=limit, stdin=subprocess.DEVNULL,
                               cwd=work)
        except subprocess.TimeoutExpired:
            return line, None, ""
        return line, r.returncode, r.stderr


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precis", default=".build/release/precis")
    parser.add_argument("--weights", default="Weights/simple-mnist5k.h5")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60)
    a = parser.parse_args()
    precis, weights = os.path.abspath(a.precis), os.path.abspath(a.weights)
    with tempfile.TemporaryDirectory() as tmp:
        shapes = {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (4320, 100), "b2": (100,), "W3": (100, 10), "b3": (10,)}
        npz = os.path.join(tmp, "book.npz")
        np.savez(npz, **{k: np.random.default_rng(0).normal(0, 0.1, s) for k, s in shapes.items()})
        seeds = [a.seed * 1_000_003 + i for i in range(a.runs)]
        bad, timeouts, codes = [], 0, {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            for line, code, err in pool.map(lambda s: run(precis, s, weights, npz, a.timeout), seeds):
                if code is None:
                    timeouts += 1
                    continue
                codes[code] = codes.get(code, 0) + 1
                runtime = "Fatal error" in err or "runtime failure" in err or "Backtrace" in err
                unclear = code != 0 and (len(err.strip().splitlines()) != 1 or not err.startswith("precis: error:"))
                if code >= 128 or code < 0 or runtime or unclear:
                    bad.append((code, line, err.strip()[:300]))
    print(f"fuzz-cli: {a.runs} command lines, exit codes {dict(sorted(codes.items()))}, {timeouts} over the time "
          f"limit, {len(bad)} failures")
    for code, line, err in bad[:20]:
        print(f"  exit {code}: precis {' '.join(repr(x) if ' ' in x or not x else x for x in line)}\n    {err}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
