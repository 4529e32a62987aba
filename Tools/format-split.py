#!/usr/bin/env python3
"""Where a number format loses: its weights, or its inputs rounded as the network runs.

Runs a stored number-format variant of a Precis weight file in numpy (decoded with ml_dtypes, as
Tools/crosscheck.py does) four ways on the test images: float32, the format's weights with float32
inputs, float32 weights with the format's inputs, and both. Weight-side remedies (GPTQ, AdaRound,
equalization) can win back only what the weights lose; what the inputs lose needs their own scales
or training.

    python3 Tools/format-split.py FILE FORMAT [--limit N] [--json]

FORMAT is a variant the file holds (`precis quantize FILE --format mxfp4` stores one).
"""
import argparse
import json
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import number_formats  # noqa: E402
from crosscheck import forward_format, folded_master  # noqa: E402
from numpy_network import test_set  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('file')
    ap.add_argument('format')
    ap.add_argument('--limit', type=int, default=0, help='only the first N test images')
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args()
    text = lambda v: v.decode() if isinstance(v, bytes) else str(v)
    with h5py.File(a.file, 'r') as f:
        mode = number_formats.mode_of(a.format)
        if not mode or mode['equalized'] or 'variants' not in f or a.format not in f['variants']:
            sys.exit(f'format-split: {a.file}: no number-format variant {a.format} without -cle '
                     f'(precis quantize {a.file} --format F stores one)')
        model = f['model']
        spec = json.loads(model.attrs['spec'])
        layers = list(zip(sorted(model['layers']), spec))
        params = {n: {k: model['layers'][n][k][()].astype(np.float64) for k in model['layers'][n]} for n, _ in layers}
        group = f['variants'][a.format]
        folded = text(group.attrs.get('folded_batchnorm', '')).split()
        master = {n: {k: w.astype(np.float32) for k, w in p.items()}
                  for n, p in folded_master(params, layers, folded).items()}
        shapes = {n: p['W'].shape for n, p in params.items() if 'W' in p}
        decoded = number_formats.decoded_weights(a.format, group, shapes)
        x, t = test_set(text(model.attrs['dataset']))
    if a.limit:
        x, t = x[:a.limit], t[:a.limit]
    floats = {n: dict(d, W=master[n]['W'], b=master[n]['b']) for n, d in decoded.items()}
    plain = dict(mode, inputs=None)

    def predicted(weights, how):
        return np.concatenate([forward_format(layers, master, weights, how, x[i:i + 500].astype(np.float32), folded)
                               for i in range(0, len(x), 500)]).argmax(axis=1)

    rows = {'float32': predicted(floats, plain)}
    rows['weights'] = predicted(decoded, plain)
    rows['inputs'] = predicted(floats, mode)
    rows['both'] = predicted(decoded, mode)
    base = float(np.mean(rows['float32'] == t))
    out = {'schema': 'precis.format-split/1', 'file': a.file, 'format': a.format, 'images': int(len(t)),
           'rows': {k: {'accuracy': float(np.mean(p == t)), 'change_pp': 100 * (float(np.mean(p == t)) - base),
                        'differs': int(np.sum(p != rows['float32']))} for k, p in rows.items()}}
    if a.json:
        print(json.dumps(out, indent=1))
        return
    print(f'{a.file}: {a.format} on {len(t)} test images, run in numpy')
    names = {'float32': 'float32', 'weights': f'{a.format} weights only', 'inputs': f'{a.format} inputs only',
             'both': f'{a.format} weights and inputs'}
    for k, r in out['rows'].items():
        print(f'  {names[k]:32s} {100 * r["accuracy"]:6.2f}%  {r["change_pp"]:+.2f} points  {r["differs"]:5d} differ')


if __name__ == '__main__':
    main()
