#!/usr/bin/env python3
"""A network from PyTorch, through ONNX, into Precis: the same predictions.

Builds three small CNNs in PyTorch: one of the book's layers (convolution, batch normalization,
ReLU, max and average pooling, flatten, linear, dropout), one of the other activations (Hardswish,
ReLU6, LeakyReLU, Hardtanh, Sigmoid, Hardsigmoid) and one with adaptive average pooling to 1×1.
Each is trained for one to three epochs on mnist5k's training digits, exported with
`torch.onnx.export` by both exporters (dynamo and TorchScript), imported with `precis import`, and
`precis eval --precision float32` is compared with PyTorch's own float32 forward pass on mnist5k's
1,000 test digits: every prediction must be the same and the largest logit difference below 1e-4.

    python3 Tools/torch-onnx-check.py [--precis .build/release/precis]

Needs torch and onnxscript (torch's exporter uses it). Prints a JSON summary; exits non-zero on a
difference.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_network import mnist5k_train, test_set  # noqa: E402


def models():
    """The networks checked, each with its epochs and learning rate: the book's layers, the other
    activations, and global average pooling (which needs a few epochs to leave chance)."""
    return {
        'book-layers': (nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, stride=1), nn.ReLU(), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(16 * 6 * 6, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 10)), 1, 1e-3),
        'activations': (nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.Hardswish(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU6(), nn.Conv2d(16, 16, 1), nn.LeakyReLU(0.1), nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3), nn.Hardtanh(-2, 2), nn.Flatten(),
            nn.Linear(16 * 5 * 5, 32), nn.Sigmoid(), nn.Linear(32, 32), nn.Hardsigmoid(), nn.Linear(32, 10)), 1, 3e-3),
        'global-pooling': (nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(32, 10)), 3, 3e-3),
    }


def train(model, x, t, epochs, lr):
    """Adam on mnist5k's training digits; the model is left in inference mode."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for i in torch.randperm(len(t)).split(100):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[i]), t[i]).backward()
            optimizer.step()
    model.eval()


def check(name, model, dynamo, precis, x, test):
    """Exports the trained `model` (dynamo or TorchScript), imports and evaluates it against PyTorch."""
    test_x, labels = test
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(test_x.astype(np.float32))).numpy().astype(np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path, h5 = os.path.join(tmp, 'torch.onnx'), os.path.join(tmp, 'torch.h5')
        if dynamo:
            torch.onnx.export(model, (x[:1],), onnx_path, input_names=['input'], output_names=['logits'],
                              dynamic_shapes={'input': {0: torch.export.Dim('N')}}, dynamo=True)
        else:
            torch.onnx.export(model, (x[:1],), onnx_path, input_names=['input'], output_names=['logits'],
                              dynamic_axes={'input': {0: 'N'}}, dynamo=False)
        run = subprocess.run([precis, 'import', onnx_path, '--dataset', 'mnist5k', '--output', h5],
                             capture_output=True, text=True)
        if run.returncode:
            sys.exit(f'torch-onnx-check: FAIL: {name} ({"dynamo" if dynamo else "torchscript"}): {run.stderr.strip()}')
        subprocess.run([precis, 'eval', h5, '--precision', 'float32', '--quiet', '--save-logits',
                        os.path.join(tmp, 'p')], check=True, stdout=subprocess.DEVNULL)
        precis_logits = np.fromfile(os.path.join(tmp, 'p-float32.f64')).reshape(len(labels), -1)
    return {
        'model': name, 'exporter': 'dynamo' if dynamo else 'torchscript', 'images': len(labels),
        'prediction_differences': int((torch_logits.argmax(1) != precis_logits.argmax(1)).sum()),
        'max_abs_logit_difference': float(np.abs(torch_logits - precis_logits).max()),
        'torch_accuracy': float((torch_logits.argmax(1) == labels).mean()),
        'precis_accuracy': float((precis_logits.argmax(1) == labels).mean()),
        'precis_import': run.stdout.splitlines(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--precis', default='.build/release/precis')
    a = ap.parse_args()
    x, t = (torch.from_numpy(v) for v in mnist5k_train())
    test, runs = test_set('mnist5k'), []
    for name, (model, epochs, lr) in models().items():
        train(model, x, t, epochs, lr)
        runs += [check(name, model, dynamo, a.precis, x, test) for dynamo in (True, False)]
    print(json.dumps({'torch_version': torch.__version__, 'runs': runs}, indent=1))
    bad = [r for r in runs if r['prediction_differences'] or r['max_abs_logit_difference'] >= 1e-4]
    for r in bad:
        print(f"torch-onnx-check: FAIL: {r['model']} ({r['exporter']}): {r['prediction_differences']} predictions "
              f"differ, largest logit difference {r['max_abs_logit_difference']:.3g}", file=sys.stderr)
    if bad:
        sys.exit(1)
    print('torch-onnx-check: passed')


if __name__ == '__main__':
    main()
