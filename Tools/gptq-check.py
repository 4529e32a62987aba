#!/usr/bin/env python3
"""GPTQ in numpy, checked code for code against `precis quantize --format F --rounding gptq`.

Writes the first --images Fashion-MNIST training images (float32 pixels in [0, 1]) and 100 test
images to an .npz, quantizes a copy of the weight file with them as the calibration set (all of
them: the calibration size is the set's), then redoes GPTQ here with numpy alone and compares every
stored code. The rules, as Precis documents them (Frantar et al. 2022, Algorithm 1):
- layer by layer in order; a layer's inputs come from the float64 network whose earlier layers
  already hold their GPTQ weights (inputs not rounded);
- H = sum of x x^T over the calibration inputs (a convolution's windows per group, an affine
  layer's inputs); a column with H_jj = 0 gets H_jj = 1 and weight 0; 0.01 of the mean diagonal
  is added to the diagonal; U is the upper Cholesky factor of H^-1;
- the scales are the stored ones (set from the weights, as rounding to nearest sets them); column j
  of every vector is rounded to q under them, then w_k -= (w_j - q) / U_jj * U_jk for k > j.

    python3 Tools/gptq-check.py [--precis .build/release/precis] [--file Weights/deep-fashion.h5]

Exits non-zero when any code differs.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import number_formats  # noqa: E402  (the sibling module in Tools/)
from numpy_network import forward, read_master, test_set, unfold_groups  # noqa: E402


def hessians(layer, x):
    """Sum of x x^T over the layer's reduction inputs: one per group of a convolution, one for an affine layer."""
    if layer['kind'] == 'Affine':
        rows = x.reshape(x.shape[0], -1)
        return [rows.T @ rows]
    if 'size' in layer:  # the book's plain convolution
        k, p = layer['size'], layer['pad']
        layer = dict(kernel_h=k, kernel_w=k, stride_h=layer['stride'], stride_w=layer['stride'], dilation_h=1,
                     dilation_w=1, pad_top=p, pad_left=p, pad_bottom=p, pad_right=p, groups=1)
    cols, _, _ = unfold_groups(x, layer)
    return [c.T @ c for c in cols]


def grid(mode, g, rows_count, length):
    """(code, value, stored) functions under the stored scales: code(x, r, j) of column j's values x
    (float32) in rows r, value(q, r, j), and stored(q), the codes as the file holds them."""
    if mode['kind'] == 'int4':
        size = mode['group'] or length
        scales = g['W_scale'][()].reshape(rows_count, -1).astype(np.float64)
        zeros = (g['W_zero_point'][()].reshape(rows_count, -1).astype(np.int64) if mode['zero_point']
                 else np.zeros(scales.shape, np.int64))
        qmin, qmax = (0, 15) if mode['zero_point'] else (-7, 7)

        def code(x, r, j):
            s, z = scales[r, j // size], zeros[r, j // size]
            return np.clip(np.round(x.astype(np.float64) / s) + z, qmin, qmax).astype(np.int64)

        def value(q, r, j):
            s, z = scales[r, j // size], zeros[r, j // size]
            return ((q - z) * s).astype(np.float32).astype(np.float64)

        def stored(q):
            return (q & 0xF).astype(np.uint8)
        return code, value, stored
    if mode['kind'] == 'scaled':
        s = np.float32(g['W_scale'][()][0])

        def code(x, r, j):
            return number_formats.grid((x / s).astype(np.float32), mode['element'], mode['saturating'])

        def value(q, r, j):
            return (q.astype(np.float32) * s).astype(np.float64)

        def stored(q):
            return q.view(np.uint8)
        return code, value, stored
    raise SystemExit(f"gptq-check: no numpy GPTQ for {mode['kind']} here")


def gptq(w, r, h, code, value):
    """GPTQ of the rows r of w (V, n) with H (n, n); the codes as `code` gives them."""
    w = w[r]
    w, h = w.copy(), h.copy()
    n = h.shape[0]
    dead = np.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    h[np.diag_indices(n)] += 0.01 * np.mean(np.diag(h))
    m = np.linalg.inv(np.linalg.cholesky(h))
    u = np.linalg.cholesky(m.T @ m).T
    codes = []
    for j in range(n):
        q = code(w[:, j].astype(np.float32), r, j)
        codes.append(q)
        e = (w[:, j] - value(q, r, j)) / u[j, j]
        w[:, j + 1:] -= np.outer(e, u[j, j + 1:])
    return np.stack(codes, axis=1)


def check(precis, source, npz, images, fmt, work):
    path = os.path.join(work, f'{fmt}.h5')
    shutil.copy(source, path)
    subprocess.run([precis, 'quantize', path, '--data', npz, '--format', fmt, '--rounding', 'gptq',
                    '--calibration-size', str(len(images)), '--quiet'], check=True, stdout=subprocess.DEVNULL)
    name = f'{fmt}-gptq'
    mode = number_formats.mode_of(name)
    with h5py.File(path, 'r') as f:
        layers, params = read_master(f)
        variant = f['variants'][name]['model']['layers']
        folded = variant.parent.parent.attrs.get('folded_batchnorm', '')
        if len(folded):
            raise SystemExit(f'gptq-check: {source} folds batch normalizations; use a file without them')
        differ = total = 0
        for lname, layer in layers:
            if lname not in variant:
                continue
            g = variant[lname]
            captured = {}

            def capture(name, layer_, x):
                if name == lname:
                    captured['x'] = x
                return None
            forward(layers, params, images, layer_fn=capture)
            w = params[lname]['W']
            rows = number_formats.weight_rows(w)
            v, length = rows.shape
            code, value, stored = grid(mode, g, v, length)
            hs = hessians(layer, captured['x'])
            each = v // len(hs)
            ours = np.concatenate([gptq(rows, slice(k * each, (k + 1) * each), hk, code, value)
                                   for k, hk in enumerate(hs)])
            theirs = number_formats.unpack(g['W'][()], length, number_formats.BITS[mode['element']])
            mine = stored(ours)
            nearest = stored(np.stack([code(rows[:, j].astype(np.float32), slice(None), j) for j in range(length)], 1))
            n = int(np.sum(mine != theirs))
            differ, total = differ + n, total + mine.size
            print(f'  {fmt} {lname}: {n} of {mine.size} codes differ '
                  f'({int(np.sum(mine != nearest))} differ from rounding to nearest)')
            q = np.stack([value(ours[:, j], slice(None), j) for j in range(length)], axis=1)
            params[lname] = dict(params[lname], W=q.reshape(w.shape) if w.ndim == 4 else q.T)
        return differ, total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--precis', default='.build/release/precis')
    ap.add_argument('--file', default='Weights/deep-fashion.h5')
    ap.add_argument('--images', type=int, default=200, help='calibration images (default 200)')
    ap.add_argument('--formats', default='int4-channel,int4-g32-z,float8-e4m3')
    a = ap.parse_args()
    x, _ = test_set('fashion-mnist', split='train')
    t, labels = test_set('fashion-mnist')
    _, y = test_set('fashion-mnist', split='train')
    images = x[:a.images]
    failures = 0
    with tempfile.TemporaryDirectory() as work:
        npz = os.path.join(work, 'calibration.npz')
        np.savez(npz, x_train=images.astype(np.float32), y_train=y[:a.images],
                 x_test=t[:100].astype(np.float32), y_test=labels[:100])
        for fmt in a.formats.split(','):
            differ, total = check(a.precis, a.file, npz, images, fmt, work)
            print(f'{fmt}-gptq: {differ} of {total} codes differ from numpy GPTQ')
            failures += differ > 0
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
