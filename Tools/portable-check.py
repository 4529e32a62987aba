#!/usr/bin/env python3
"""A release build of Precis runs on any x86-64 CPU: only the C kernels use instructions beyond it, and
they choose them at run time.

1. Static: disassembles the binary (objdump) and lists every function with an AVX, AVX2, FMA, F16C or
   AVX-512 instruction (a VEX- or EVEX-coded one: a `v` mnemonic, or a ymm, zmm or mask register). Each
   must be a function of the CKernels objects (whose vector functions carry target attributes and run
   only at their kernel level); Swift code, compiled for the x86-64 baseline, has none.
2. Dynamic (when valgrind is installed): valgrind's CPU has AVX2 but no AVX-512, as an AVX2 machine
   does, and it stops at an instruction its CPU lacks (a build with `-target-cpu native` on an AVX-512
   machine stops there at once). A copy of the binary without debug information (which valgrind
   cannot read) evaluates a shipped file in float32, float16, MXFP4 and NVFP4 there, at the kernel
   level it detects and with PRECIS_KERNELS=portable.

    python3 Tools/portable-check.py [--precis .build/release/precis] [--objects .build/release/CKernels.build]
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

VECTOR = re.compile(r"%[yz]mm\d+|%xmm(1[6-9]|2\d|3[01])\b|%k[0-7]\b")


def functions_with_vector_code(binary):
    """Function name -> number of VEX/EVEX instructions, from objdump's disassembly."""
    found, name = {}, None
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary], capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        head = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if head:
            name = head.group(1)
            continue
        parts = line.split("\t")
        if name is None or len(parts) < 2:
            continue
        insn = parts[1].strip()
        mnemonic = insn.split(" ")[0]
        if (mnemonic.startswith("v") and mnemonic not in ("verr", "verw")) or VECTOR.search(insn):
            found[name] = found.get(name, 0) + 1
    return found


def kernel_functions(objects):
    """Every function defined in the CKernels objects."""
    names = set()
    for obj in glob.glob(os.path.join(objects, "*.o")):
        out = subprocess.run(["nm", "--defined-only", obj], capture_output=True, text=True, check=True)
        names.update(line.split()[-1] for line in out.stdout.splitlines() if line.split()[1] in "tT")
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precis", default=".build/release/precis")
    ap.add_argument("--objects", default=None, help="the CKernels objects (default: next to the binary)")
    args = ap.parse_args()
    objects = args.objects or os.path.join(os.path.dirname(args.precis), "CKernels.build")
    kernels = kernel_functions(objects)
    if not kernels:
        sys.exit(f"portable-check: no CKernels objects in {objects}")
    vector = functions_with_vector_code(args.precis)
    outside = sorted(f for f in vector if f not in kernels)
    print(f"portable-check: {len(vector)} functions use instructions beyond x86-64, "
          f"{len(vector) - len(outside)} of them C kernels")
    for f in outside[:20]:
        print(f"  outside the C kernels: {f} ({vector[f]} instructions)")
    if outside:
        sys.exit(f"portable-check: {len(outside)} functions outside the C kernels use AVX or later")
    if shutil.which("valgrind") is None:
        print("portable-check: valgrind is not installed; the run on a CPU without AVX-512 is skipped")
        return
    weights = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Weights", "simple-mnist5k.h5")
    with tempfile.TemporaryDirectory() as scratch:
        binary = os.path.join(scratch, "precis")
        subprocess.run(["objcopy", "--strip-debug", args.precis, binary], check=True)
        for level in (None, "portable"):
            env = dict(os.environ)
            env.pop("PRECIS_KERNELS", None)
            if level:
                env["PRECIS_KERNELS"] = level
            cmd = ["valgrind", "--tool=none", "--quiet", binary, "eval", weights,
                   "--precision", "float32,float16,mxfp4,nvfp4", "--limit", "20", "--quiet"]
            run = subprocess.run(cmd, env=env, capture_output=True, text=True)
            label = level or "detected"
            if run.returncode != 0 or "\nnvfp4 " not in run.stdout:
                sys.stderr.write(run.stderr[-2000:])
                sys.exit(f"portable-check: under valgrind (AVX2, no AVX-512), kernels {label}: exit {run.returncode}")
            print(f"portable-check: under valgrind (AVX2, no AVX-512), kernels {label}: the report runs")

if __name__ == "__main__":
    main()
