#!/usr/bin/env python3
"""Checks Precis's ONNX export and import against ONNX itself and ONNX Runtime.

For a weight file: `precis export FILE --onnx` writes a model, which `onnx.checker` must accept
(full check, with shape inference). ONNX Runtime runs it on the test set the file names; its
predictions must equal those of `precis eval --precision float32` on every image, and the largest
logit difference must stay below 1e-4. `precis import` of the exported model must give back the
file's float32 tensors bit for bit. The images per second of both, measured in the same run, are
reported next to each other.

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
from crosscheck import test_set  # noqa: E402  (the same loader as the numpy cross-check)


def layer_tensors(path):
    """{"00_conv1/W": bytes, ...} of a weight file's float32 master."""
    with h5py.File(path, 'r') as f:
        layers = f['model/layers']
        return {f'{name}/{k}': layers[name][k][()].tobytes() for name in layers for k in layers[name]}


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
    x, labels = test_set(dataset)
    if a.limit:
        x, labels = x[:a.limit], labels[:a.limit]
    n = len(labels)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, 'model.onnx')
        subprocess.run([a.precis, 'export', a.file, '--onnx', model_path], check=True, stdout=subprocess.DEVNULL)
        model = onnx.load(model_path)
        onnx.checker.check_model(model, full_check=True)

        args = [a.precis, 'eval', a.file, '--precision', 'float32', '--json', '--quiet',
                '--save-logits', os.path.join(tmp, 'precis')]
        if a.limit:
            args += ['--first', str(a.limit)]
        report = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
        precis_logits = np.fromfile(os.path.join(tmp, 'precis-float32.f64')).reshape(n, -1)
        precis_speed = report['results'][0]['images_per_second']

        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        session = ort.InferenceSession(model_path, options, providers=['CPUExecutionProvider'])
        batches = [x[i:i + 100].astype(np.float32) for i in range(0, n, 100)]
        session.run(None, {'input': batches[0]})  # warm-up
        start = time.perf_counter()
        ort_logits = np.concatenate([session.run(None, {'input': b})[0] for b in batches])
        ort_speed = n / (time.perf_counter() - start)

        differ = int((ort_logits.argmax(1) != precis_logits.argmax(1)).sum())
        largest = float(np.abs(ort_logits.astype(np.float64) - precis_logits).max())
        if differ:
            failures.append(f'{differ} of {n} predictions differ between ONNX Runtime and precis eval')
        if largest >= 1e-4:
            failures.append(f'largest logit difference {largest:.3g} is not below 1e-4')

        back = os.path.join(tmp, 'back.h5')
        subprocess.run([a.precis, 'import', model_path, '--output', back, '--dataset', dataset],
                       check=True, stdout=subprocess.DEVNULL)
        original, returned = layer_tensors(a.file), layer_tensors(back)
        changed = sorted(k for k in original if returned.get(k) != original[k])
        if changed or set(original) != set(returned):
            failures.append(f'import of the export changed {changed or "the tensor names"}')

    summary = {
        'file': a.file, 'dataset': dataset, 'images': n, 'opset': model.opset_import[0].version,
        'prediction_differences': differ, 'max_abs_logit_difference': largest,
        'onnxruntime_accuracy': float((ort_logits.argmax(1) == labels).mean()),
        'precis_accuracy': float((precis_logits.argmax(1) == labels).mean()),
        'onnxruntime_images_per_second': round(ort_speed), 'precis_images_per_second': round(precis_speed),
        'onnxruntime_version': ort.__version__, 'round_trip_bit_for_bit': not changed,
    }
    print(json.dumps(summary, indent=1))
    if failures:
        print('onnx-check: FAIL: ' + '; '.join(failures), file=sys.stderr)
        sys.exit(1)
    print('onnx-check: passed')


if __name__ == '__main__':
    main()
