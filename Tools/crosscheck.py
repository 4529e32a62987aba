#!/usr/bin/env python3
"""Independent check of a Precis weight file and of `precis eval`.

Opens the file with h5py (not with Precis), checks the layout, rebuilds the network from the stored
layer spec, runs a numpy forward pass in float64 on the test set the network was trained on, and
compares predictions, accuracy and logits with `precis eval --json --save-logits`. It also runs the
same numpy code in float16 (numpy's float16 matmul accumulates in float32 and rounds the result:
float16-acc32 semantics) and compares it with Precis's float16-acc32 mode. Number-format variants
(FP8, MX, NVFP4, int4) are decoded with ml_dtypes, their codes checked against this script's own
rounding of the master (Tools/number_formats.py), and their networks run in numpy on the first
--format-images test images next to `precis eval --first N`. Where a quantized variant names
`folded_batchnorm`, the script folds those normalizations into the master itself and checks the
codes against that; an equalized variant (`-cle`) has its stored scales and shifts applied to the
master first (Tools/numpy_equalization.py). A searched variant (`search-<goal>`) has each
number-format part checked the same way, and runs each layer in its own candidate: decoded format
codes, int8 codes times their scales with int8 inputs, or float16 weights with half inputs.

    python3 Tools/crosscheck.py Weights/deep-fashion.h5 [--precis .build/release/precis] [--limit N]

Exits non-zero when float64 accuracy or predictions differ, when the largest logit difference
exceeds 1e-9 relative to the largest logit, when the float16-acc32 accuracies differ by more than
2 images, when a format variant's codes or scales differ from the script's rounding, or when more
than 0.2% (at least 2) of a format variant's predictions differ from the numpy simulation (inputs
near a rounding boundary can round the other way after a float32 sum in another order).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import number_formats  # noqa: E402  (the sibling module in Tools/)
from numpy_equalization import equalize, pairs_of, stored_equalization  # noqa: E402
from numpy_network import forward, grouped_convolution, im2col, test_set  # noqa: E402  (the data sets and the float64 forward pass)


def folded_master(params, layers, names):
    """The master with each batch normalization in `names` (a variant's `folded_batchnorm`) folded
    into the convolution or affine layer it reads, in float64: with k = gamma / sqrt(running_var +
    1e-5) per output channel, W·k and (b - running_mean)·k + beta."""
    out, order = dict(params), [n for n, _ in layers]
    for bn in names:
        i = order.index(bn)
        layer, p = layers[i][1], params[bn]
        source = (layer.get('inputs') or [order[i - 1]])[0]
        assert layer['kind'] == 'BatchNormalization' and layers[order.index(source)][1]['kind'] in (
            'Convolution', 'Affine'), f'{bn} does not fold into {source}'
        k = p['gamma'] / np.sqrt(p['running_var'] + 1e-5)
        w = params[source]['W']
        out[source] = {'W': w * (k.reshape(-1, 1, 1, 1) if w.ndim == 4 else k),
                       'b': (params[source]['b'] - p['running_mean']) * k + p['beta']}
    return out


def forward_format(layers, params, variant, mode, x, folded=()):
    """`forward` in float32 for a number-format variant: the layers it stores run on its decoded
    weights, with their inputs rounded as the format says (a convolution's windows and an affine
    layer's inputs, along the reduction axis); the others run on the master; the batch
    normalizations in `folded` pass their input through."""
    def stored(name, layer, x):
        if name in folded:
            return x
        if name not in variant:
            return None
        own = variant[name].get('mode', mode)  # a searched variant's layers each have their own
        if layer['kind'] == 'Convolution' and 'size' not in layer:
            attrs = variant[name]['attrs']
            return grouped_convolution(x, variant[name]['W'], variant[name]['b'], layer,
                                       lambda rows: number_formats.round_inputs(rows, own, attrs))
        if layer['kind'] == 'Convolution':
            w, b, attrs = variant[name]['W'], variant[name]['b'], variant[name]['attrs']
            col, oh, ow = im2col(x, layer['size'], layer['size'], layer['stride'], layer['pad'])
            n = x.shape[0]
            col = number_formats.round_inputs(col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1), own, attrs)
            return (col @ w.reshape(w.shape[0], -1).T + b).reshape(n, oh, ow, -1).transpose(0, 3, 1, 2)
        rows = number_formats.round_inputs(x.reshape(x.shape[0], -1), own, variant[name]['attrs'])
        return rows @ variant[name]['W'] + variant[name]['b']
    return forward(layers, params, x, layer_fn=stored, dtype=np.float32)


def check_formats(a, f, layers, params, formats, x, t, failures):
    """Every number-format variant: its codes against this script's own rounding of the master, and
    its network (decoded with ml_dtypes, run in numpy) against `precis eval` on the first images."""
    shapes = {name: p['W'].shape for name, p in params.items() if 'W' in p}
    text = lambda v: v.decode() if isinstance(v, bytes) else str(v)
    n = min(a.format_images, len(x))
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, 'logits')
        cmd = [a.precis, 'eval', a.file, '--precision', ','.join(formats), '--first', str(n), '--json', '--quiet',
               '--save-logits', prefix, '--force']
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        for v in formats:
            group, mode = f['variants'][v], number_formats.mode_of(v)
            folded = text(group.attrs.get('folded_batchnorm', '')).split()
            own = params
            if mode and mode['equalized']:
                scales, shifts = stored_equalization(group)
                own = equalize(layers, params, pairs_of(layers), scales, shifts)
            master = {name: {k: w.astype(np.float32) for k, w in p.items()}
                      for name, p in folded_master(own, layers, folded).items()}
            if mode:
                problems = number_formats.check_variant(v, group, master, text)
                decoded = number_formats.decoded_weights(v, group, shapes)
            else:  # searched: each number-format part checked as a variant, each layer run in its own format
                parts = group['variants'] if 'variants' in group else {}
                problems = [f'{part}: {p}' for part in parts if number_formats.mode_of(part)
                            for p in number_formats.check_variant(part, parts[part], master, text)]
                decoded = number_formats.searched_layers(group, shapes)
            failures += [f'/variants/{v}: {p}' for p in problems]
            batches = [x[i:min(i + 250, n)].astype(np.float32) for i in range(0, n, 250)]
            ours = np.concatenate([forward_format(layers, master, decoded, mode, b, folded) for b in batches])
            theirs = np.fromfile(f'{prefix}-{v}.f64', dtype='<f8').reshape(ours.shape)
            differ = int(np.sum(ours.argmax(axis=1) != theirs.argmax(axis=1)))
            report[v] = {'codes_checked': not problems, 'images': n, 'prediction_differences': differ,
                         'numpy_correct': int(np.sum(ours.argmax(axis=1) == t[:n])),
                         'precis_correct': int(np.sum(theirs.argmax(axis=1) == t[:n])),
                         'median_abs_logit_difference': float(np.median(np.abs(ours - theirs)))}
            if differ > max(2, n // 500):
                failures.append(f'/variants/{v}: {differ} of {n} predictions differ from the numpy simulation')
    return report


# ---------------------------------------------------------------- the check

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('file')
    ap.add_argument('--precis', default='.build/release/precis')
    ap.add_argument('--limit', type=int, default=None, help='check only the first N test images')
    ap.add_argument('--format-images', type=int, default=2000, metavar='N',
                    help='run number-format variants in numpy on the first N test images (default 2000)')
    ap.add_argument('--float16', type=int, default=0, metavar='N',
                    help='also compare numpy float16 with precis float16-acc32 on the first N images (numpy float16 is slow)')
    a = ap.parse_args()

    failures = []
    with h5py.File(a.file, 'r') as f:
        text = lambda v: v.decode() if isinstance(v, bytes) else str(v)  # fixed-length strings read as bytes
        assert text(f.attrs['format']) == 'precis.weights', 'format attribute'
        assert int(f.attrs['format_version']) == 1, 'format_version'
        model = f['model']
        spec = json.loads(model.attrs['spec'])
        dataset = text(model.attrs['dataset'])
        names = sorted(model['layers'])
        assert len(names) == len(spec), 'one group per layer'
        layers = list(zip(names, spec))
        params = {}
        for name, layer in layers:
            g = model['layers'][name]
            assert text(g.attrs['kind']) == layer['kind'], f'{name} kind'
            if 'inputs' in g.attrs:  # a graph: what the layer reads
                layer['inputs'] = text(g.attrs['inputs']).split()
            params[name] = {k: g[k][()].astype(np.float64) for k in g}
            for k, v in g.items():
                assert v.dtype == np.float32, f'{name}/{k} is {v.dtype}, expected float32'
        variants = list(f['variants']) if 'variants' in f else []
        formats = [v for v in variants if number_formats.mode_of(v) or v.startswith('search-')]
        int8 = {}
        for v in variants:
            if v.startswith('search-'):
                continue  # checked with the number formats: each layer in its own format
            stored = f['variants'][v]['model']['layers']
            if v == 'float16':
                for name, _ in layers:
                    for k, d in stored[name].items():
                        if d.dtype != np.float16 or not np.array_equal(d[()], model['layers'][name][k][()].astype(np.float16)):
                            failures.append(f'/variants/float16/{name}/{k} is not the float32 master rounded to float16')
            elif v == 'bfloat16':
                # h5py reads the 16-bit type as float32: it must be the master rounded to float32,
                # then to bfloat16 (upper 16 bits, to nearest even).
                for name, _ in layers:
                    for k, d in stored[name].items():
                        bits = model['layers'][name][k][()].astype(np.float32).view(np.uint32).astype(np.uint64)
                        want = (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)
                        if d.dtype != np.float32 or not np.array_equal(d[()], want):
                            failures.append(f'/variants/bfloat16/{name}/{k} is not the master rounded to bfloat16')
            elif v in formats:
                continue
            elif v.startswith('int8-'):
                # int8 codes times their scales must be the master within half a step; biases int32.
                # A mixed variant's float16 layers must be the master rounded to float16.
                # An equalized variant (-cle) is checked against the master equalized by its stored scales.
                half = [n for n in stored if text(stored[n].attrs.get('precision', '')) == 'float16']
                e = stored_equalization(f['variants'][v])
                own = equalize(layers, params, pairs_of(layers), *e) if e else params
                for name in half:
                    for k, d in stored[name].items():
                        if d.dtype != np.float16 or not np.array_equal(d[()], own[name][k].astype(np.float32).astype(np.float16)):
                            failures.append(f'/variants/{v}/{name}/{k} is not the master rounded to float16')
                folding = text(f['variants'][v].attrs.get('folded_batchnorm', '')).split()
                folded = folded_master(own, layers, folding)
                for name in (n for n in stored if n not in half):
                    g = stored[name]
                    w, scale, b = g['W'][()], g['W_scale'][()], g['b'][()]
                    master = folded[name]['W']
                    axis = int(g.attrs['axis'])
                    shape = [1] * w.ndim
                    shape[axis] = -1
                    s = scale.reshape(shape) if len(scale) > 1 else scale[0]
                    # A dynamic variant's biases are the master's in float32, not int32 codes.
                    if int(f['variants'][v].attrs.get('dynamic', 0)) == 1:
                        b_ok = b.dtype == np.float32 and np.array_equal(b, own[name]['b'].astype(np.float32))
                    else:
                        b_ok = b.dtype == np.int32
                    ok = w.dtype == np.int8 and b_ok and np.all(scale > 0) and np.all(np.abs(w) <= 127)
                    if not ok or np.max(np.abs(w * s - master) / np.broadcast_to(s, w.shape)) > 0.5 + 1e-6:
                        failures.append(f'/variants/{v}/{name}: int8 codes and scales do not reproduce the master')
                # Every convolution and affine layer is stored in int8 or named in float_layers (mixed).
                kept = text(f['variants'][v].attrs.get('float_layers', '')).split()
                if sorted([n for n in stored if n not in half] + kept) != sorted(n for n, l in layers if l['kind'].lower() in ('convolution', 'affine')):
                    failures.append(f'/variants/{v}: int8 layers {sorted(stored)} and float_layers {kept} do not cover the network')
                int8[v] = len(stored) - len(half)

        x, t = test_set(dataset)
        format_report = check_formats(a, f, layers, params, formats, x, t, failures) if formats else {}
    if a.limit:
        x, t = x[:a.limit], t[:a.limit]
    logits = np.concatenate([forward(layers, params, x[i:i + 500]) for i in range(0, len(x), 500)])
    pred = logits.argmax(axis=1)
    acc = float(np.mean(pred == t))
    single = {name: {k: v.astype(np.float32) for k, v in p.items()} for name, p in params.items()}
    x32 = x.astype(np.float32)
    acc32 = float(np.mean(np.concatenate([forward(layers, single, x32[i:i + 500]).argmax(axis=1) for i in range(0, len(x), 500)]) == t))
    n16 = min(a.float16, len(x))
    half = {name: {k: v.astype(np.float16) for k, v in p.items()} for name, p in params.items()}
    x16 = x[:n16].astype(np.float16)
    pred16 = np.concatenate([forward(layers, half, x16[i:i + 500]).argmax(axis=1) for i in range(0, n16, 500)] or [np.zeros(0, int)])

    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, 'logits')
        cmd = [a.precis, 'eval', a.file, '--precision', 'float64,float32,float16-acc32', '--json', '--quiet', '--save-logits', prefix,
               '--force']
        if a.limit:
            cmd += ['--first', str(a.limit)]
        out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        theirs = np.fromfile(prefix + '-float64.f64', dtype='<f8').reshape(logits.shape)
        their16 = np.fromfile(prefix + '-float16-acc32.f64', dtype='<f8').reshape(logits.shape).argmax(axis=1)[:n16]
    rows = {r['precision']: r for r in out['results']}
    their_pred = theirs.argmax(axis=1)
    rel = float(np.max(np.abs(theirs - logits)) / np.max(np.abs(logits)))
    report = {
        'file': a.file, 'dataset': dataset, 'images': int(len(t)), 'variants': variants, 'int8_variant_layers_checked': int8,
        'numpy_float64_accuracy': acc, 'precis_float64_accuracy': rows['float64']['accuracy'],
        'numpy_float32_accuracy': acc32, 'precis_float32_accuracy': rows['float32']['accuracy'],
        'prediction_differences_float64': int(np.sum(their_pred != pred)),
        'max_abs_logit_difference': float(np.max(np.abs(theirs - logits))), 'max_relative_logit_difference': rel,
        'precis_float16_acc32_accuracy': rows['float16-acc32']['accuracy'], 'format_variants': format_report,
    }
    if n16:
        report.update({'float16_images': n16, 'numpy_float16_correct': int(np.sum(pred16 == t[:n16])),
                       'precis_float16_acc32_correct': int(np.sum(their16 == t[:n16])),
                       'prediction_differences_float16': int(np.sum(their16 != pred16))})
    print(json.dumps(report, indent=1))
    if rows['float64']['accuracy'] != acc:
        failures.append('float64 accuracy differs')
    if rows['float32']['accuracy'] != acc32:
        failures.append('float32 accuracy differs')
    if report['prediction_differences_float64']:
        failures.append('float64 predictions differ')
    if n16 and abs(report['numpy_float16_correct'] - report['precis_float16_acc32_correct']) > 2:
        failures.append('numpy float16 and precis float16-acc32 accuracies differ by more than 2 images')
    if rel >= 1e-9:
        failures.append(f'logits differ by {rel:.3g} relative (bound 1e-9)')
    for msg in failures:
        print('crosscheck: FAIL: ' + msg, file=sys.stderr)
    print('crosscheck: ' + ('FAILED' if failures else 'passed'))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
