#!/usr/bin/env python3
"""A network from PyTorch, through ONNX, into Precis: the same predictions.

Builds a small CNN in PyTorch (convolution, batch normalization, ReLU, max and average pooling,
flatten, linear, dropout), trains it for one epoch on mnist5k's training digits, exports it with
`torch.onnx.export`, imports it with `precis import`, and compares `precis eval --precision float32`
with PyTorch's own float32 forward pass on mnist5k's 1,000 test digits: every prediction must be
the same and the largest logit difference below 1e-4.

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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--precis', default='.build/release/precis')
    a = ap.parse_args()
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, stride=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16 * 6 * 6, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 10))
    x, t = (torch.from_numpy(v) for v in mnist5k_train())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for i in torch.randperm(len(t)).split(100):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[i]), t[i]).backward()
        optimizer.step()
    model.eval()
    test_x, labels = test_set('mnist5k')
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(test_x.astype(np.float32))).numpy().astype(np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path, h5 = os.path.join(tmp, 'torch.onnx'), os.path.join(tmp, 'torch.h5')
        torch.onnx.export(model, (x[:1],), onnx_path, input_names=['input'], output_names=['logits'],
                          dynamic_shapes={'input': {0: torch.export.Dim('N')}}, dynamo=True)
        imported = subprocess.run([a.precis, 'import', onnx_path, '--dataset', 'mnist5k', '--output', h5], check=True, capture_output=True,
                                  text=True).stdout.splitlines()
        subprocess.run([a.precis, 'eval', h5, '--precision', 'float32', '--quiet', '--save-logits',
                        os.path.join(tmp, 'p')], check=True, stdout=subprocess.DEVNULL)
        precis_logits = np.fromfile(os.path.join(tmp, 'p-float32.f64')).reshape(len(labels), -1)
    differ = int((torch_logits.argmax(1) != precis_logits.argmax(1)).sum())
    largest = float(np.abs(torch_logits - precis_logits).max())
    summary = {
        'torch_version': torch.__version__, 'images': len(labels), 'prediction_differences': differ,
        'max_abs_logit_difference': largest, 'torch_accuracy': float((torch_logits.argmax(1) == labels).mean()),
        'precis_accuracy': float((precis_logits.argmax(1) == labels).mean()), 'precis_import': imported,
    }
    print(json.dumps(summary, indent=1))
    if differ or largest >= 1e-4:
        print(f'torch-onnx-check: FAIL: {differ} predictions differ, largest logit difference {largest:.3g}',
              file=sys.stderr)
        sys.exit(1)
    print('torch-onnx-check: passed')


if __name__ == '__main__':
    main()
