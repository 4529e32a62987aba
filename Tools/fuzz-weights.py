#!/usr/bin/env python3
"""Damages copies of a weight file at random bytes and checks that `precis eval` never crashes.

Each trial overwrites 1, 4 or 16 random bytes (mostly in the first 20,000, where the HDF5 metadata
lives) and runs `precis eval` on the copy. An acceptable outcome is a normal exit 0 (the damage
hit unused space or a weight that is still finite), or exit 1 with exactly one error line. A
signal (crash) or anything else fails the check.

    python3 Tools/fuzz-weights.py Weights/simple-mnist5k.h5 [--trials 100] [--seed 1] [--precis PATH] [--precision P]

`--precision` picks what eval runs (default float32); a stored variant such as int8-wchannel-au8z
makes the check read that variant too.
"""
import argparse
import os
import random
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('file')
    ap.add_argument('--trials', type=int, default=100)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--precis', default='.build/release/precis')
    ap.add_argument('--precision', default='float32')
    a = ap.parse_args()
    data = open(a.file, 'rb').read()
    rng = random.Random(a.seed)
    outcomes, bad = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'damaged.h5')
        for trial in range(a.trials):
            b = bytearray(data)
            for _ in range(rng.choice([1, 4, 16])):
                pos = rng.randrange(min(len(b), 20000) if rng.random() < 0.8 else len(b))
                b[pos] = rng.randrange(256)
            with open(path, 'wb') as f:
                f.write(b)
            r = subprocess.run([a.precis, 'eval', path, '--precision', a.precision, '--limit', '10', '--quiet'],
                               capture_output=True, text=True, timeout=120)
            outcomes[r.returncode] = outcomes.get(r.returncode, 0) + 1
            lines = r.stderr.strip().splitlines()
            if not (r.returncode == 0 or (r.returncode == 1 and len(lines) == 1 and lines[0].startswith('precis: error: '))):
                bad.append(f'trial {trial}: exit {r.returncode}, stderr {r.stderr[:200]!r}')
    for line in bad:
        print('fuzz-weights: FAIL: ' + line, file=sys.stderr)
    print(f'fuzz-weights: {a.file} ({a.precision}): {a.trials} damaged copies, exit codes {dict(sorted(outcomes.items()))}, '
          f'{len(bad)} crashes or unclear errors')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
