#!/usr/bin/env python3
"""Cross-layer equalization in numpy, checked against `precis quantize --format F --equalize`.

Quantizes a copy of each weight file with the first --images Fashion-MNIST training images as the
calibration set, then, from the stored master alone:
- finds the pairs of layers that can be rescaled exactly (a convolution or affine layer read only
  through its folded batch normalization, ReLU, LeakyReLU, pooling, global average pooling and
  dropout by the next convolution or affine layer);
- equalizes them by the closed form of Nagel et al. 2019, s = sqrt(r1 / r2) per channel (r1 the
  range of the first layer's output channel, r2 that of the second layer's weights reading it,
  batch normalizations folded), pair after pair in order, until no scale moves;
- compares its scales with the variant's `equalization/<layer>/scale`;
- checks that the network equalized by the stored scales computes the master's logits on 1,000
  test images (float64 within 1e-9, float32 within 1e-5), and that with the stored shifts absorbed
  too it computes them on the calibration images (float64 within 1e-9);
- compares every stored bias `b` with the equalized network's, batch normalizations folded.

    python3 Tools/cle-check.py [--precis .build/release/precis] [--files A.h5,B.h5]

Exits non-zero when a check fails.
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
from numpy_equalization import closed_form, equalize, folded, pairs_of  # noqa: E402
from numpy_network import forward, read_master, test_set  # noqa: E402

def check(precis, source, npz, images, test, fmt, work):
    path = os.path.join(work, os.path.basename(source))
    shutil.copyfile(source, path)
    subprocess.run([precis, 'quantize', path, '--data', npz, '--format', fmt, '--equalize',
                    '--calibration-size', str(len(images)), '--quiet'], check=True, stdout=subprocess.DEVNULL)
    failures = []
    with h5py.File(path, 'r') as f:
        layers, params = read_master(f)
        v = f['variants'][f'{fmt}-cle']
        pairs = pairs_of(layers)
        stored = sorted(v['equalization']) if 'equalization' in v else []
        if stored != sorted(a for a, *_ in pairs):
            failures.append(f'pairs: stored {stored}, numpy {[a for a, *_ in pairs]}')
            return failures, {}
        scales = {a: v['equalization'][a]['scale'][()] for a, *_ in pairs}
        shifts = {a: v['equalization'][a]['shift'][()] for a, *_ in pairs}
        biases = {name: v['model/layers'][name]['b'][()] for name in v['model/layers']}
    mine = closed_form(layers, params, pairs)
    worst = max((np.abs(mine[a] / scales[a] - 1).max() for a in mine), default=0.0)
    if worst > 1e-6:
        failures.append(f'scales differ from the closed form by {worst:.2e} (relative)')
    zero = {a: np.zeros_like(s) for a, s in scales.items()}
    scaled = equalize(layers, params, pairs, scales, zero)
    before, after = forward(layers, params, test), forward(layers, scaled, test)
    d64 = np.abs(before - after).max()
    as32 = lambda p: {k: {t: a.astype(np.float32) for t, a in d.items()} for k, d in p.items()}
    t32 = test.astype(np.float32)
    b32 = forward(layers, as32(params), t32, dtype=np.float32)
    a32 = forward(layers, as32(scaled), t32, dtype=np.float32)
    d32 = (np.abs(b32 - a32) / np.maximum(1, np.abs(b32))).max()
    if d64 > 1e-9 * max(1, np.abs(before).max()) or d32 > 1e-5:
        failures.append(f'equalized logits differ: float64 {d64:.2e}, float32 {d32:.2e}')
    full = equalize(layers, params, pairs, scales, shifts)
    cb, ca = forward(layers, params, images), forward(layers, full, images)
    dc = np.abs(cb - ca).max()
    if dc > 1e-9 * max(1, np.abs(cb).max()):
        failures.append(f'with the shifts absorbed, the calibration logits differ by {dc:.2e}')
    mine_b = {name: b for name, (_, b) in folded(layers, full).items()}
    bad = [n for n in biases if not np.allclose(biases[n], mine_b[n].astype(np.float32), rtol=1e-6, atol=1e-6)]
    if bad:
        failures.append(f'stored biases differ from numpy\'s: {bad}')
    shifted = sum(int((shifts[a] > 0).sum()) for a in shifts)
    return failures, dict(pairs=len(pairs), scale_range=(min(s.min() for s in scales.values()),
                                                         max(s.max() for s in scales.values())),
                          shifted=shifted, float64=d64, float32=d32, calibration=dc,
                          changed=int((before.argmax(1) != forward(layers, full, test).argmax(1)).sum()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--precis', default='.build/release/precis')
    ap.add_argument('--files', default='Weights/deep-fashion.h5,Weights/resnet20-fashion.h5')
    ap.add_argument('--format', default='float8-e4m3')
    ap.add_argument('--images', type=int, default=200, help='calibration images (default 200)')
    a = ap.parse_args()
    x, y = test_set('fashion-mnist', split='train')
    t, labels = test_set('fashion-mnist')
    images, test = x[:a.images], t[:1000]
    failed = False
    with tempfile.TemporaryDirectory() as work:
        npz = os.path.join(work, 'calibration.npz')
        np.savez(npz, x_train=images.astype(np.float32), y_train=y[:a.images],
                 x_test=t[:100].astype(np.float32), y_test=labels[:100])
        for source in a.files.split(','):
            failures, f = check(a.precis, source, npz, images, test, a.format, work)
            name = os.path.basename(source)
            if f:
                lo, hi = f['scale_range']
                print(f'{name}: {f["pairs"]} pairs, scales {lo:.3g} to {hi:.3g}, {f["shifted"]} channels shifted; '
                      f'equalized logits on 1000 test images differ by {f["float64"]:.1e} (float64), '
                      f'{f["float32"]:.1e} (float32, relative); with the shifts {f["calibration"]:.1e} on the '
                      f'calibration images, {f["changed"]} of 1000 test predictions changed')
            for m in failures:
                print(f'{name}: FAIL {m}')
            failed = failed or bool(failures)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
