#!/usr/bin/env python3
"""Checks Precis's ONNX export and import against ONNX itself and ONNX Runtime.

For a weight file: `precis export FILE --onnx` writes the network in float32, in float16 and in
every stored static int8 variant; `onnx.checker` must accept each (full check, with shape
inference). ONNX Runtime runs each on the test set the file names, next to `precis eval` in the
same precision:
- float32: every prediction the same, the largest logit difference below 1e-4;
- float16 (ONNX Runtime's float16 kernels against Precis's float16-acc32, both summing in float32):
  at least 99.9% of the predictions the same;
- int8 (QuantizeLinear/DequantizeLinear against Precis's integer path): at least 99.9% of the
  predictions the same as ONNX Runtime running the QDQ graph as written (graph optimizations off:
  dequantize, float convolution, quantize), which is what the ONNX operators define. ONNX Runtime's
  default session fuses the pairs into integer kernels; those are timed and compared too, but where
  they disagree with ONNX Runtime's own QDQ result the difference is reported as the runtime's, not
  counted against Precis: on x86 CPUs without VNNI they multiply with vpmaddubsw, which saturates a
  pair of uint8 × int8 products at 16 bits.
`precis import` of the float32 export must give back the file's float32 tensors bit for bit. The
accuracy and images per second of both, measured in the same run, are reported next to each other.

    python3 Tools/onnx-check.py Weights/deep-fashion.h5 [--precis .build/release/precis] [--limit N]

Prints a JSON summary; exits non-zero on any failure.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_network import test_set  # noqa: E402  (the same loader as the numpy cross-check)


def layer_tensors(path):
    """{"00_conv1/W": bytes, ...} of a weight file's float32 master."""
    with h5py.File(path, 'r') as f:
        layers = f['model/layers']
        return {f'{name}/{k}': layers[name][k][()].tobytes() for name in layers for k in layers[name]}


def run(session, batches):
    """One session's logits over all batches, in float64."""
    return np.concatenate([session.run(None, {'input': b})[0] for b in batches]).astype(np.float64)


def difference(a, b):
    """(predictions that differ, largest absolute logit difference) of two logit arrays."""
    return int((a.argmax(1) != b.argmax(1)).sum()), float(np.abs(a - b).max())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('file')
    ap.add_argument('--precis', default='.build/release/precis')
    ap.add_argument('--limit', type=int, default=None, help='the first N test images only')
    a = ap.parse_args()
    failures = []
    with h5py.File(a.file, 'r') as f:
        dataset = f['model'].attrs['dataset']
        dataset = dataset.decode() if isinstance(dataset, bytes) else str(dataset)
        variants = f['variants'] if 'variants' in f else {}
        int8 = [v for v in variants if v.startswith('int8-') and not int(variants[v].attrs.get('dynamic', 0))]
    x, labels = test_set(dataset)
    if a.limit:
        x, labels = x[:a.limit], labels[:a.limit]
    n = len(labels)
    forms = [('float32', 'float32'), ('float16', 'float16-acc32')] + [(v, v) for v in int8]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        args = [a.precis, 'eval', a.file, '--precision', ','.join(m for _, m in forms), '--json', '--quiet',
                '--save-logits', os.path.join(tmp, 'precis')]
        if a.limit:
            args += ['--first', str(a.limit)]
        report = {r['precision']: r for r in json.loads(
            subprocess.run(args, check=True, capture_output=True, text=True).stdout)['results']}
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        batches = [x[i:i + 100].astype(np.float32) for i in range(0, n, 100)]
        for form, mode in forms:
            model_path = os.path.join(tmp, f'{form}.onnx')
            subprocess.run([a.precis, 'export', a.file, '--onnx', model_path, '--precision', form], check=True,
                           stdout=subprocess.DEVNULL)
            model = onnx.load(model_path)
            onnx.checker.check_model(model, full_check=True)
            session = ort.InferenceSession(model_path, options, providers=['CPUExecutionProvider'])
            session.run(None, {'input': batches[0]})  # warm-up
            start = time.perf_counter()
            ort_logits = run(session, batches)
            ort_speed = n / (time.perf_counter() - start)
            precis_logits = np.fromfile(os.path.join(tmp, f'precis-{mode}.f64')).reshape(n, -1)
            differ, largest = difference(ort_logits, precis_logits)
            row = {
                'onnx': form, 'precis': mode, 'prediction_differences': differ, 'max_abs_logit_difference': largest,
                'agreement': 1 - differ / n, 'onnxruntime_accuracy': float((ort_logits.argmax(1) == labels).mean()),
                'precis_accuracy': float((precis_logits.argmax(1) == labels).mean()),
                'onnxruntime_images_per_second': round(ort_speed),
                'precis_images_per_second': round(report[mode]['images_per_second'])}
            if form == 'float32' and (differ or largest >= 1e-4):
                failures.append(f'float32: {differ} predictions differ, largest logit difference {largest:.3g}')
            elif form.startswith('int8-'):
                unfused = ort.SessionOptions()
                unfused.intra_op_num_threads = options.intra_op_num_threads
                unfused.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                qdq = run(ort.InferenceSession(model_path, unfused, providers=['CPUExecutionProvider']), batches)
                differ, largest = difference(qdq, precis_logits)
                kernels_differ, kernels_largest = difference(ort_logits, qdq)
                row.update({'qdq_prediction_differences': differ, 'qdq_max_abs_logit_difference': largest,
                            'onnxruntime_kernels_vs_qdq_prediction_differences': kernels_differ,
                            'onnxruntime_kernels_vs_qdq_max_abs_logit_difference': kernels_largest})
                if differ > n / 1000:
                    failures.append(f'{form}: {differ} of {n} predictions differ from precis {mode}')
                elif kernels_differ > n / 1000:
                    print(f'onnx-check: note: {form}: ONNX Runtime\'s integer kernels on this CPU change '
                          f'{kernels_differ} of {n} predictions of its own QDQ result (largest logit difference '
                          f'{kernels_largest:.3g}); Precis agrees with the QDQ result', file=sys.stderr)
            elif differ > n / 1000:
                failures.append(f'{form}: {differ} of {n} predictions differ from precis {mode}')
            rows.append(row)

        back = os.path.join(tmp, 'back.h5')
        known = dataset in ('fashion-mnist', 'mnist5k')
        subprocess.run([a.precis, 'import', os.path.join(tmp, 'float32.onnx'), '--output', back,
                        '--dataset' if known else '--data', dataset], check=True, stdout=subprocess.DEVNULL)
        original, returned = layer_tensors(a.file), layer_tensors(back)
        changed = sorted(k for k in original if returned.get(k) != original[k])
        if changed or set(original) != set(returned):
            failures.append(f'import of the export changed {changed or "the tensor names"}')

    summary = {
        'file': a.file, 'dataset': dataset, 'images': n, 'opset': model.opset_import[0].version,
        'onnxruntime_version': ort.__version__, 'round_trip_bit_for_bit': not changed, 'runs': rows,
    }
    print(json.dumps(summary, indent=1))
    if failures:
        print('onnx-check: FAIL: ' + '; '.join(failures), file=sys.stderr)
        sys.exit(1)
    print('onnx-check: passed')


if __name__ == '__main__':
    main()
