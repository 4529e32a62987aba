#!/usr/bin/env python3
"""PyTorch's int8 quantization of a Precis network next to Precis's own, in the same run.

Loads the network of a Precis weight file into PyTorch (float32), checks that it predicts as the
file's numpy forward pass does, then quantizes it the way PyTorch's eager-mode tooling does:
static int8 (the x86/fbgemm default qconfig: per-channel int8 weights, histogram-calibrated uint8
activations, Conv+ReLU and Linear+ReLU fused) calibrated on images drawn from the training set,
and dynamic int8 (quantize_dynamic: Linear layers only; PyTorch has no dynamic convolution). Each
runs the whole test set in batches of 100. In the same run, `precis eval` runs float32 and the
file's stored int8 variant. Prints accuracy, the change and disagreements against the same
implementation's float32, and images/s; `--json` prints the same.

Precis's Dropout scales by (1 - ratio) at inference (the book's semantics) where PyTorch's does
nothing, so each dropout factor is folded into the next layer's weights (a last one only scales
the logits and is dropped).

    python3 Tools/torch-int8.py Weights/deep-fashion.h5 [--variant int8-wchannel-au8z]
        [--calibration-size 500] [--seed 0] [--precis .build/release/precis] [--json]
"""
import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import numpy_network  # noqa: E402  (the same data rules and numpy forward pass)


def train_images(name):
    """The training images of Fashion-MNIST (or an MNIST-format directory), (N,1,H,W) float32."""
    directory = os.environ.get('FASHION_MNIST_DIR', '/usr/share/datasets/fashion-mnist') if name == 'fashion-mnist' else name
    for sep in ('-', '.'):
        for ext in ('', '.gz'):
            p = os.path.join(directory, 'train' + sep + 'images' + sep + 'idx3-ubyte' + ext)
            if os.path.exists(p):
                x = numpy_network.read_idx(p)
                return (x.astype(np.float32) / np.float32(255)).reshape(x.shape[0], 1, x.shape[1], x.shape[2])
    raise SystemExit(f'torch-int8: {directory}: no training images')


def build(torch, layers, params):
    """The network as a torch Sequential wrapped in Quant/DeQuant stubs, and the index pairs to fuse."""
    nn = torch.nn
    modules, fuse, factor = [], [], 1.0
    for name, layer in layers:
        kind = layer['kind']
        if kind in ('Convolution', 'Affine'):
            w, b = params[name]['W'], params[name]['b']
            if kind == 'Convolution':
                m = nn.Conv2d(w.shape[1], w.shape[0], layer['size'], stride=layer['stride'], padding=layer['pad'])
                m.weight.data = torch.tensor(w * factor, dtype=torch.float32)
            else:
                if modules and not isinstance(modules[-1], nn.Flatten):
                    modules.append(nn.Flatten())
                m = nn.Linear(w.shape[0], w.shape[1])
                m.weight.data = torch.tensor((w * factor).T.copy(), dtype=torch.float32)
            m.bias.data = torch.tensor(b, dtype=torch.float32)
            factor = 1.0
            modules.append(m)
        elif kind == 'ReLU':
            if modules and isinstance(modules[-1], (nn.Conv2d, nn.Linear)):
                fuse.append([str(len(modules) - 1 + 1), str(len(modules) + 1)])  # +1: the QuantStub comes first
            modules.append(nn.ReLU())
        elif kind == 'MaxPooling':
            modules.append(nn.MaxPool2d(layer['size'], stride=layer['stride'], padding=layer['pad']))
        elif kind == 'Dropout':
            factor *= 1.0 - layer['ratio']
        else:
            raise SystemExit(f'torch-int8: layer kind {kind} is not supported here')
    from torch.ao.quantization import DeQuantStub, QuantStub
    return nn.Sequential(QuantStub(), *modules, DeQuantStub()), fuse


def run(torch, net, x, batch=100):
    """Predictions on x (N,1,H,W) and the seconds taken, in batches."""
    predicted, start = [], time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(x), batch):
            predicted.append(net(torch.from_numpy(x[i:i + batch])).argmax(1).numpy())
    return np.concatenate(predicted), time.perf_counter() - start


def summary(predicted, reference, labels, seconds):
    return {'accuracy': float(np.mean(predicted == labels)), 'change_vs_float32': float(np.mean(predicted == labels) - np.mean(reference == labels)),
            'differs_from_float32': int(np.sum(predicted != reference)), 'images_per_second': len(labels) / seconds}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('file')
    ap.add_argument('--variant', default='int8-wchannel-au8z', help='the stored Precis int8 variant to run next to PyTorch')
    ap.add_argument('--calibration-size', type=int, default=500)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--precis', default='.build/release/precis')
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args()
    warnings.filterwarnings('ignore')  # torch.ao.quantization's deprecation notices
    import torch
    from torch.ao import quantization as tq
    torch.set_num_threads(os.cpu_count() or 1)
    torch.backends.quantized.engine = 'x86' if 'x86' in torch.backends.quantized.supported_engines else 'fbgemm'

    with h5py.File(a.file, 'r') as f:
        spec = json.loads(f['model'].attrs['spec'])
        dataset = f['model'].attrs['dataset']
        dataset = dataset.decode() if isinstance(dataset, bytes) else str(dataset)
        names = sorted(f['model/layers'])
        layers = list(zip(names, spec))
        params = {n: {k: f['model/layers'][n][k][()].astype(np.float64) for k in f['model/layers'][n]} for n in names}
    x64, labels = numpy_network.test_set(dataset)
    x = x64.astype(np.float32)
    net, fuse = build(torch, layers, params)
    net.eval()
    expected = np.concatenate([numpy_network.forward(layers, params, x64[i:i + 500]).argmax(1) for i in range(0, len(x64), 500)])
    float32, seconds32 = run(torch, net, x)
    results = {'pytorch float32': summary(float32, float32, labels, seconds32)}
    results['pytorch float32']['differs_from_numpy_float64'] = int(np.sum(float32 != expected))

    # Static int8: fuse, observe on calibration images from the training set, convert. The default
    # qconfig keeps activations to 7 bits (reduce_range); the second run uses all 8.
    rng = np.random.default_rng(a.seed)
    train = train_images(dataset)
    calibration = train[rng.permutation(len(train))[:a.calibration_size]]
    default = tq.get_default_qconfig(torch.backends.quantized.engine)
    full = tq.QConfig(activation=tq.HistogramObserver.with_args(reduce_range=False), weight=default.weight)
    for label, qconfig in (('pytorch static int8 (default qconfig)', default), ('pytorch static int8 (8-bit activations)', full)):
        static = tq.fuse_modules(build(torch, layers, params)[0].eval(), fuse)
        static.qconfig = qconfig
        tq.prepare(static, inplace=True)
        with torch.no_grad():
            for i in range(0, len(calibration), 100):
                static(torch.from_numpy(calibration[i:i + 100]))
        tq.convert(static, inplace=True)
        predicted, seconds = run(torch, static, x)
        results[label] = summary(predicted, float32, labels, seconds)

    dynamic = tq.quantize_dynamic(build(torch, layers, params)[0].eval(), {torch.nn.Linear}, dtype=torch.qint8)
    predicted, seconds = run(torch, dynamic, x)
    results['pytorch dynamic int8 (Linear only)'] = summary(predicted, float32, labels, seconds)

    out = subprocess.run([a.precis, 'eval', a.file, '--precision', 'float32,' + a.variant, '--json', '--quiet'],
                         check=True, capture_output=True, text=True).stdout
    for r in json.loads(out)['results']:
        results['precis ' + r['precision']] = {'accuracy': r['accuracy'], 'change_vs_float32': r['vs_float32']['change_pp'] / 100,
                                               'differs_from_float32': r['vs_float32']['differs'],
                                               'images_per_second': r['images_per_second']}

    meta = {'file': a.file, 'dataset': dataset, 'images': int(len(labels)), 'calibration_images': int(len(calibration)),
            'torch': torch.__version__, 'engine': torch.backends.quantized.engine, 'threads': torch.get_num_threads()}
    if a.json:
        print(json.dumps({**meta, 'results': results}, indent=1))
        return 0
    print(f"{a.file}: {dataset}, {meta['images']} test images; PyTorch {meta['torch']} ({meta['engine']}, {meta['threads']} threads), "
          f"{meta['calibration_images']} calibration images from the training set")
    print(f"PyTorch float32 against the file's numpy float64 forward pass: {results['pytorch float32']['differs_from_numpy_float64']} predictions differ")
    print(f"{'run':<42}{'accuracy':>9}{'change':>10}{'differs':>9}{'images/s':>10}")
    for name, r in results.items():
        print(f"{name:<42}{100 * r['accuracy']:>8.2f}%{100 * r['change_vs_float32']:>+9.2f}{r['differs_from_float32']:>9d}{r['images_per_second']:>10.0f}")
    print('change and differs: against the same implementation\'s float32')
    return 0


if __name__ == '__main__':
    sys.exit(main())
