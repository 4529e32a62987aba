#!/usr/bin/env python3
"""Damages copies of a weight file (or of a data set's IDX files) at random bytes and checks that
`precis eval` never crashes, never exits silently, and never gives a different answer.

Each trial overwrites 1, 4 or 16 random bytes (half of the trials in the first 20,000 bytes, where
the HDF5 metadata lives, half anywhere) and runs `precis eval --json --save-logits` on the copy.
The outcomes allowed:

- exit 1 with exactly one `precis: error:` line (the damage was detected);
- exit 0 with exactly the intact file's logits, bit for bit (the damage hit unused bytes).

Anything else fails: a signal (a crash), another exit code, an error of several lines or none, or
exit 0 with other logits ("accepted but different").

    python3 Tools/fuzz-weights.py Weights/simple-mnist5k.h5 [--trials 100] [--seed 1] [--precis PATH]
        [--precision P] [--limit N] [--data DIR]

`--precision` picks what eval runs (default float32); a stored variant such as int8-wchannel-au8z
makes the check read that variant too. With `--data DIR` (a directory of MNIST-format IDX files,
gzipped), the weight file stays intact and one of the data set's files is damaged instead.
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile


def damaged(data, rng):
    """A copy of `data` with 1, 4 or 16 random bytes overwritten by other values."""
    b = bytearray(data)
    for _ in range(rng.choice([1, 4, 16])):
        pos = rng.randrange(min(len(b), 20000) if rng.random() < 0.5 else len(b))
        b[pos] = (b[pos] + rng.randrange(1, 256)) % 256
    return b


def evaluate(a, path, data_dir, prefix):
    """Runs eval; returns (exit code, stderr lines, logits bytes per precision or None)."""
    cmd = [a.precis, 'eval', path, '--precision', a.precision, '--limit', str(a.limit), '--quiet', '--json',
           '--save-logits', prefix, '--force']
    if data_dir:
        cmd += ['--data', data_dir]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    logits = None
    if r.returncode == 0:
        names = sorted(f for f in os.listdir(os.path.dirname(prefix)) if f.startswith(os.path.basename(prefix) + '-'))
        logits = {n[len(os.path.basename(prefix)) + 1:]: open(os.path.join(os.path.dirname(prefix), n), 'rb').read()
                  for n in names}
        for n in names:
            os.remove(os.path.join(os.path.dirname(prefix), n))
    return r.returncode, r.stderr.strip().splitlines(), logits


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('file')
    ap.add_argument('--trials', type=int, default=100)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--precis', default='.build/release/precis')
    ap.add_argument('--precision', default='float32')
    ap.add_argument('--limit', type=int, default=200, help='test images each run evaluates')
    ap.add_argument('--data', help='damage this MNIST-format directory instead of the weight file')
    a = ap.parse_args()
    rng = random.Random(a.seed)
    counts = {'detected': 0, 'same answer': 0, 'different answer': 0, 'crash or unclear exit': 0}
    bad = []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'out')
        os.mkdir(out)
        prefix = os.path.join(out, 'logits')
        data_dir = None
        if a.data:
            data_dir = os.path.join(tmp, 'data')
            shutil.copytree(a.data, data_dir)
            targets = sorted(os.path.join(data_dir, f) for f in os.listdir(data_dir))
        else:
            targets = [os.path.join(tmp, 'damaged.h5')]
            shutil.copy(a.file, targets[0])
        originals = {t: open(t, 'rb').read() for t in targets}
        weights = a.file if a.data else targets[0]
        code, lines, intact = evaluate(a, weights, data_dir, prefix)
        if code != 0:
            print(f'fuzz-weights: the intact file does not evaluate: {lines}', file=sys.stderr)
            return 1
        for trial in range(a.trials):
            target = rng.choice(targets)
            with open(target, 'wb') as f:
                f.write(damaged(originals[target], rng))
            code, lines, logits = evaluate(a, weights, data_dir, prefix)
            with open(target, 'wb') as f:
                f.write(originals[target])
            where = f'trial {trial} ({os.path.basename(target)})'
            if code == 1 and len(lines) == 1 and lines[0].startswith('precis: error: '):
                counts['detected'] += 1
            elif code == 0 and logits == intact:
                counts['same answer'] += 1
            elif code == 0:
                counts['different answer'] += 1
                bad.append(f'{where}: exit 0 with other logits than the intact file')
            else:
                counts['crash or unclear exit'] += 1
                bad.append(f'{where}: exit {code}, stderr {lines[:3]!r}')
    for line in bad:
        print('fuzz-weights: FAIL: ' + line, file=sys.stderr)
    what = f'{a.data} (for {a.file})' if a.data else a.file
    print(f'fuzz-weights: {what} ({a.precision}, {a.limit} images): {a.trials} damaged copies: '
          + ', '.join(f'{k} {v}' for k, v in counts.items()))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
