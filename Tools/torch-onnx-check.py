#!/usr/bin/env python3
"""A network from PyTorch, through ONNX, into Precis: the same predictions.

Builds three small chains in PyTorch: one of the book's layers (convolution, batch normalization,
ReLU, max and average pooling, flatten, linear, dropout), one of the other activations (Hardswish,
ReLU6, LeakyReLU, Hardtanh, Sigmoid, Hardsigmoid) and one with adaptive average pooling to 1×1; each
is trained for one to three epochs on mnist5k's training digits and compared on mnist5k's 1,000 test
digits. Then three graphs: a ResNet (residual adds, a strided projection shortcut, batch
normalization), a MobileNetV2-style network (inverted residual blocks: 1×1 expansion, 3×3 depthwise,
ReLU6, 1×1 projection, a squeeze-and-excitation gate) and two branches with 1×3 and 3×1 kernels
concatenated; each is trained for one epoch on 12,000 Fashion-MNIST training images and compared on
all 10,000 Fashion-MNIST test images. The ResNet normalizes its input inside `forward` (the import
reads the `Sub` and `Div` as an input normalization); the MobileNetV2-style network is trained on
inputs normalized outside it, as `transforms.Normalize` does, and imported with `--normalize`. Every network is exported with `torch.onnx.export` by both
exporters (dynamo, its weights as external data, and TorchScript), imported with `precis import`,
and `precis eval --precision float32` is compared with PyTorch's own float32 forward pass: every
prediction must be the same and the largest logit difference below 1e-4.

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


GRAPH_TRAIN_IMAGES = 12000


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


class Residual(nn.Module):
    """He et al.'s basic block: two 3×3 convolutions with batch normalization, added to the input
    (through a strided 1×1 projection where the shape changes), then ReLU."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1×1 expansion, 3×3 depthwise, ReLU6, an optional squeeze-and-excitation
    gate, 1×1 projection, and the input added back where the stride is 1 and the channels match."""

    def __init__(self, c_in, c_out, stride, expand, gate=False):
        super().__init__()
        h = c_in * expand
        self.expand = nn.Sequential(nn.Conv2d(c_in, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False), nn.BatchNorm2d(h),
                                       nn.ReLU6())
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(h, h // 4, 1), nn.ReLU(), nn.Conv2d(h // 4, h, 1),
                                  nn.Hardsigmoid()) if gate else None
        self.project = nn.Sequential(nn.Conv2d(h, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.depthwise(self.expand(x))
        if self.gate is not None:
            y = y * self.gate(y)
        y = self.project(y)
        return x + y if self.residual else y


class Normalize(nn.Module):
    """`(x - mean) / std` with the statistics as buffers, as a model that normalizes its own input does."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer('mean', torch.tensor([[[[mean]]]]))
        self.register_buffer('std', torch.tensor([[[[std]]]]))

    def forward(self, x):
        return (x - self.mean) / self.std


class Branches(nn.Module):
    """A 3×3 stem, then a 1×3 and a 3×1 branch (one strided 2×1 with a dilation) concatenated."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.a = nn.Sequential(nn.Conv2d(8, 8, (1, 3), padding=(0, 1)), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(8, 8, (3, 1), padding=(2, 0), dilation=(2, 1)), nn.ReLU())
        self.head = nn.Sequential(nn.Conv2d(24, 16, 3, stride=(2, 1), padding=1), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(16 * 7 * 14, 10))

    def forward(self, x):
        x = self.stem(x)
        return self.head(torch.cat([self.a(x), self.b(x), x], 1))


# Fashion-MNIST's pixel mean and standard deviation.
FASHION_STATISTICS = (0.286, 0.353)


def graphs():
    """The graph networks checked on Fashion-MNIST, each with its learning rate and the input
    normalization it was trained with outside the model (or None)."""
    torch.manual_seed(0)
    return {
        'resnet': (nn.Sequential(
            Normalize(*FASHION_STATISTICS), nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            Residual(16, 16, 1), Residual(16, 32, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)), 3e-3,
            None),
        'mobilenetv2-style': (nn.Sequential(
            nn.Conv2d(1, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
            InvertedResidual(16, 16, 1, 4), InvertedResidual(16, 24, 2, 4), InvertedResidual(24, 24, 1, 4, gate=True),
            nn.Conv2d(24, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(64, 10)), 3e-3, FASHION_STATISTICS),
        'two-branch-concat': (Branches(), 3e-3, None),
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


def check(name, model, dynamo, precis, x, test, dataset, outside=None):
    """Exports the trained `model` (dynamo or TorchScript), imports and evaluates it against PyTorch;
    `outside`, the (mean, std) the model's inputs were normalized with, is given to the import."""
    test_x, labels = test
    mean, std = outside or (0.0, 1.0)
    with torch.no_grad():
        torch_logits = model((torch.from_numpy(test_x.astype(np.float32)) - mean) / std).numpy().astype(np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path, h5 = os.path.join(tmp, 'torch.onnx'), os.path.join(tmp, 'torch.h5')
        if dynamo:
            torch.onnx.export(model, (x[:1],), onnx_path, input_names=['input'], output_names=['logits'],
                              dynamic_shapes=({0: torch.export.Dim('N')},), dynamo=True,
                              external_data=True)
        else:
            torch.onnx.export(model, (x[:1],), onnx_path, input_names=['input'], output_names=['logits'],
                              dynamic_axes={'input': {0: 'N'}}, dynamo=False)
        normalize = ['--normalize', f'{mean}/{std}'] if outside else []
        run = subprocess.run([precis, 'import', onnx_path, '--dataset', dataset, '--output', h5] + normalize,
                             capture_output=True, text=True)
        if run.returncode:
            sys.exit(f'torch-onnx-check: FAIL: {name} ({"dynamo" if dynamo else "torchscript"}): {run.stderr.strip()}')
        subprocess.run([precis, 'eval', h5, '--precision', 'float32', '--quiet', '--save-logits',
                        os.path.join(tmp, 'p')], check=True, stdout=subprocess.DEVNULL)
        precis_logits = np.fromfile(os.path.join(tmp, 'p-float32.f64')).reshape(len(labels), -1)
    return {
        'model': name, 'exporter': 'dynamo' if dynamo else 'torchscript', 'dataset': dataset, 'images': len(labels),
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
        runs += [check(name, model, dynamo, a.precis, x, test, 'mnist5k') for dynamo in (True, False)]
    fx, ft = test_set('fashion-mnist', 'train')
    fx = torch.from_numpy(fx[:GRAPH_TRAIN_IMAGES].astype(np.float32))
    ft, test = torch.from_numpy(ft[:GRAPH_TRAIN_IMAGES]), test_set('fashion-mnist')
    for name, (model, lr, outside) in graphs().items():
        mean, std = outside or (0.0, 1.0)
        train(model, (fx - mean) / std, ft, 1, lr)
        runs += [check(name, model, dynamo, a.precis, fx, test, 'fashion-mnist', outside) for dynamo in (True, False)]
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
