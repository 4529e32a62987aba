#!/usr/bin/env python3
"""Precis's small number formats against ml_dtypes, bit for bit.

For each format (E4M3, E5M2, E3M2, E2M3, E2M1, E8M0), `precis formats --encode` converts every
float16 value (widened to float32) and 10^6 random float32 values to codes, and each code must be
the one ml_dtypes gives (`x.astype(ml_dtypes.<type>)`). The random values mix uniformly random bit
patterns (every exponent, subnormals, infinities and NaNs), the exact midpoints between neighbouring
codes (ties, both signs), values just past the largest finite value, ±0, and the edges of float32's
subnormals. With --saturate, the
codes must be ml_dtypes' except that a finite or infinite input that ml_dtypes turns into an
infinity or NaN gives the largest finite value of its sign (E8M0, a scale, has no saturating form).

    python3 Tools/formats-check.py [--precis .build/release/precis] [--count 1000000]

Prints one line per format; exits non-zero on any difference.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import ml_dtypes
import numpy as np

BITS = {'e4m3': 8, 'e5m2': 8, 'e3m2': 6, 'e2m3': 6, 'e2m1': 4, 'e8m0': 8}
TYPES = {
    'e4m3': ml_dtypes.float8_e4m3fn, 'e5m2': ml_dtypes.float8_e5m2, 'e3m2': ml_dtypes.float6_e3m2fn,
    'e2m3': ml_dtypes.float6_e2m3fn, 'e2m1': ml_dtypes.float4_e2m1fn, 'e8m0': ml_dtypes.float8_e8m0fnu,
}


def values(name, count, rng):
    """Every float16 value, then `count` random float32 values aimed at the format's edges."""
    t = TYPES[name]
    every_half = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
    grid = np.unique(np.arange(1 << BITS[name], dtype=np.uint8).view(t).astype(np.float32))
    grid = grid[np.isfinite(grid)]
    ties = (grid[:-1].astype(np.float64) + grid[1:]) / 2
    top = float(ml_dtypes.finfo(t).max)
    past = top * (1 + rng.random(count // 10) * 0.2)
    quarter = count // 4
    parts = [
        rng.integers(0, 1 << 32, count - 3 * quarter, dtype=np.uint64).astype(np.uint32).view(np.float32),
        rng.choice(ties, quarter).astype(np.float32) * rng.choice([-1, 1], quarter),
        (rng.choice(grid, quarter) * (1 + rng.normal(0, 0.05, quarter))).astype(np.float32),
        np.concatenate([past, -past, [0.0, -0.0]]).astype(np.float32)[:quarter],
    ]
    edges = np.array([1, 0x3FFFFF, 0x400000, 0x400001, 0x7FFFFF, 0x800000], dtype=np.uint32).view(np.float32)
    return np.concatenate([every_half] + parts + [edges, -edges]).astype(np.float32)


def encode(precis, name, x, saturate, tmp):
    src, dst = os.path.join(tmp, 'x.f32'), os.path.join(tmp, 'codes')
    x.astype('<f4').tofile(src)
    subprocess.run([precis, 'formats', '--encode', name, '--input', src, '--output', dst, '--force']
                   + (['--saturate'] if saturate else []), check=True)
    return np.fromfile(dst, dtype=np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--precis', default='.build/release/precis')
    ap.add_argument('--count', type=int, default=1_000_000)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    failed = False
    with tempfile.TemporaryDirectory() as tmp, np.errstate(over='ignore', invalid='ignore'):
        for name, t in TYPES.items():
            x = values(name, a.count, rng)
            want = x.astype(t).view(np.uint8)
            got = encode(a.precis, name, x, False, tmp)
            bad = np.flatnonzero(got != want)
            # Saturating: ml_dtypes' code, except where it gives inf or NaN for a number or an infinity.
            special = ~np.isfinite(x.astype(t).astype(np.float32)) & ~np.isnan(x)
            top = np.array(ml_dtypes.finfo(t).max, dtype=t).view(np.uint8)
            sign = np.where(np.signbit(x), np.array(-ml_dtypes.finfo(t).max, dtype=t).view(np.uint8), top)
            want_saturated = np.where(special, sign if name != 'e8m0' else want, want).astype(np.uint8)
            saturated = encode(a.precis, name, x, True, tmp)
            bad_saturated = np.flatnonzero(saturated != want_saturated)
            print(f'formats-check: {name}: {len(x)} values, {len(bad)} differ from ml_dtypes, '
                  f'{len(bad_saturated)} differ when saturating')
            for i in list(bad[:5]) + list(bad_saturated[:5]):
                print(f'  {x[i]!r} (bits {x[i:i + 1].view(np.uint32)[0]:#010x}): precis {got[i]:#04x} '
                      f'saturating {saturated[i]:#04x}, ml_dtypes {want[i]:#04x}', file=sys.stderr)
            failed |= len(bad) > 0 or len(bad_saturated) > 0
    if failed:
        print('formats-check: FAIL', file=sys.stderr)
        sys.exit(1)
    print('formats-check: passed')


if __name__ == '__main__':
    main()
