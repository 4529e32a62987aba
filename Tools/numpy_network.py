"""The numpy side of the independent checks: the data sets read by the rules Precis follows, and a
float64 forward pass of a network given as its stored layer list and parameters. crosscheck.py,
onnx-check.py, torch-onnx-check.py, keras-check.py and torch-int8.py import it; it never runs
Precis.

    from numpy_network import test_set, forward
    images, labels = test_set('fashion-mnist')
    logits = forward(layers, params, images[:100])
"""
import gzip
import json
import os
import struct

import numpy as np


# ---------------------------------------------------------------- data (the same rules as Precis)

def read_idx(path):
    with open(path, 'rb') as f:
        data = f.read()
    if data[:2] == b'\x1f\x8b':
        data = gzip.decompress(data)
    ndim = data[3]
    dims = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mnist5k_path():
    return os.environ.get('PRECIS_MNIST5K') or os.path.join(
        os.environ.get('PRECIS_CACHE') or os.path.join(os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'), 'precis'),
        'mnist_5k.csv.gz')


def mnist5k_train():
    """mnist5k's 4,000 training digits (rows 0-399 of each class of 500): images (N,1,28,28) float32, labels."""
    a = np.loadtxt(mnist5k_path(), delimiter=',', dtype=np.float64)
    train = (np.arange(len(a)) % 500) < 400
    return (a[train, :784].astype(np.float32) / 255).reshape(-1, 1, 28, 28), a[train, 784].astype(np.int64)


def test_set(name, split='t10k'):
    """(images (N,1,H,W) float64 in [0,1], labels) of the data set a file names; split 'train' for an
    MNIST-format directory's training images."""
    if name == 'mnist5k':
        a = np.loadtxt(mnist5k_path(), delimiter=',', dtype=np.float64)
        test = (np.arange(len(a)) % 500) >= 400
        x = (a[test, :784].astype(np.float32) / 255).astype(np.float64)
        return x.reshape(-1, 1, 28, 28), a[test, 784].astype(np.int64)
    directory = os.environ.get('FASHION_MNIST_DIR', '/usr/share/datasets/fashion-mnist') if name == 'fashion-mnist' else name
    def find(stem):
        for sep in ('-', '.'):
            for ext in ('', '.gz'):
                p = os.path.join(directory, stem.replace('-idx', sep + 'idx') + ext)
                if os.path.exists(p):
                    return p
        raise SystemExit(f'{directory}: missing {stem}')
    x = read_idx(find(split + '-images-idx3-ubyte'))
    t = read_idx(find(split + '-labels-idx1-ubyte'))
    # Precis scales pixels in float32 (Float(byte) / 255), then widens.
    x = (x.astype(np.float32) / np.float32(255)).astype(np.float64)
    return x.reshape(x.shape[0], 1, x.shape[1], x.shape[2]), t.astype(np.int64)


# ---------------------------------------------------------------- layers (inference)

def read_master(f):
    """The layer list [(name, layer dict)] and float64 parameters {name: {tensor: array}} of an open
    weight file's /model."""
    text = lambda v: v.decode() if isinstance(v, bytes) else str(v)
    model = f['model']
    spec = json.loads(model.attrs['spec'])
    names = sorted(model['layers'])
    layers = list(zip(names, spec))
    params = {}
    for name, layer in layers:
        g = model['layers'][name]
        if 'inputs' in g.attrs:
            layer['inputs'] = text(g.attrs['inputs']).split()
        params[name] = {k: g[k][()].astype(np.float64) for k in g}
    return layers, params


def im2col(x, fh, fw, stride, pad, fill=0.0):
    n, c, h, w = x.shape
    oh, ow = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    img = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)], constant_values=fill)
    col = np.empty((n, c, fh, fw, oh, ow), dtype=x.dtype)
    for y in range(fh):
        for xx in range(fw):
            col[:, :, y, xx] = img[:, :, y:y + stride * oh:stride, xx:xx + stride * ow:stride]
    return col, oh, ow


def unfold_groups(x, layer):
    """A convolution's windows by group, for a layer stored with kernel_h, ..., groups: a list of
    (N·OH·OW, C/groups·KH·KW) matrices, window elements in (channel, ky, kx) order, and OH, OW."""
    n, c, h, wd = x.shape
    g = layer['groups']
    kh, kw, sh, sw = layer['kernel_h'], layer['kernel_w'], layer['stride_h'], layer['stride_w']
    dh, dw = layer['dilation_h'], layer['dilation_w']
    img = np.pad(x, [(0, 0), (0, 0), (layer['pad_top'], layer['pad_bottom']), (layer['pad_left'], layer['pad_right'])])
    oh = (img.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (img.shape[3] - dw * (kw - 1) - 1) // sw + 1
    col = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            col[:, :, ky, kx] = img[:, :, ky * dh:ky * dh + sh * (oh - 1) + 1:sh, kx * dw:kx * dw + sw * (ow - 1) + 1:sw]
    col = col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, g, -1)
    return [col[:, k] for k in range(g)], oh, ow


def grouped_convolution(x, w, b, layer, round_rows=lambda rows: rows):
    """A convolution with groups, a rectangular kernel, a stride and a dilation per axis and padding
    on each side; `round_rows` rounds each group's windows first."""
    cols, oh, ow = unfold_groups(x, layer)
    fg = w.shape[0] // len(cols)
    ys = [round_rows(col) @ w[k * fg:(k + 1) * fg].reshape(fg, -1).T for k, col in enumerate(cols)]
    return (np.concatenate(ys, axis=1) + b).reshape(x.shape[0], oh, ow, -1).transpose(0, 3, 1, 2)


def forward(layers, params, x, layer_fn=None, dtype=None):
    """The network's output for `x`. `layers` is [(name, layer dict)] in order; a layer reads the one
    before it unless its dict has 'inputs' (layer names or 'input', as a graph file's groups name
    them). `layer_fn(name, layer, x)` may compute a layer of one input itself (None: the layer as
    stored); `dtype` casts every layer's output."""
    last_use = {}
    for i, (name, layer) in enumerate(layers):
        for src in layer.get('inputs') or [layers[i - 1][0] if i else 'input']:
            last_use[src] = i
    values, prev = {'input': x}, 'input'
    for i, (name, layer) in enumerate(layers):
        srcs = layer.get('inputs') or [prev]
        xs = [values[s] for s in srcs]
        y = layer_fn(name, layer, xs[0]) if layer_fn and len(xs) == 1 else None
        y = apply(name, layer, params, xs) if y is None else y
        values[name] = y if dtype is None else y.astype(dtype)
        for s in set(srcs):
            if last_use[s] == i:
                del values[s]
        prev = name
    return values[prev]


def apply(name, layer, params, xs):
    """One layer on its inputs `xs` (one, or several for a merge)."""
    kind, x = layer['kind'], xs[0]
    if kind == 'Add':
        y = xs[0]
        for v in xs[1:]:
            y = y + v
        return y
    if kind == 'Concat':
        return np.concatenate(xs, axis=1)
    if kind == 'Multiply':
        return xs[0] * xs[1]
    if kind == 'Convolution' and 'size' in layer:
        w, b = params[name]['W'], params[name]['b']
        col, oh, ow = im2col(x, layer['size'], layer['size'], layer['stride'], layer['pad'])
        n = x.shape[0]
        col = col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1)
        return (col @ w.reshape(w.shape[0], -1).T + b).reshape(n, oh, ow, -1).transpose(0, 3, 1, 2)
    if kind == 'Convolution':
        return grouped_convolution(x, params[name]['W'], params[name]['b'], layer)
    if kind in ('MaxPooling', 'AveragePooling'):
        k, s, p = layer['size'], layer['stride'], layer['pad']
        if kind == 'MaxPooling':
            col, oh, ow = im2col(x, k, k, s, p, fill=-np.inf)
            return col.max(axis=(2, 3))
        col, oh, ow = im2col(x, k, k, s, p)
        return col.sum(axis=(2, 3)) / (k * k)
    if kind == 'Affine':
        return x.reshape(x.shape[0], -1) @ params[name]['W'] + params[name]['b']
    if kind == 'ReLU':
        return np.where(x > 0, x, 0.0)
    if kind == 'Dropout':
        return x * x.dtype.type(1.0 - layer['ratio'])
    if kind == 'BatchNormalization':
        q = params[name]
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return (q['gamma'].reshape(shape) * (x - q['running_mean'].reshape(shape))
                / np.sqrt(q['running_var'].reshape(shape) + 1e-5) + q['beta'].reshape(shape))
    if kind == 'InputNormalization':
        q = params[name]
        return (x - q['mean'].reshape(1, -1, 1, 1)) / q['std'].reshape(1, -1, 1, 1)
    if kind == 'Clip':
        return np.clip(x, layer['min'], layer['max'])
    if kind == 'LeakyReLU':
        return np.where(x > 0, x, layer['alpha'] * x)
    if kind == 'Sigmoid':
        return 1 / (1 + np.exp(-x))
    if kind == 'HardSigmoid':
        return np.clip(layer['alpha'] * x + layer['beta'], 0, 1)
    if kind == 'HardSwish':
        return x * np.clip(x / 6 + 0.5, 0, 1)
    if kind == 'GlobalAveragePooling':
        return x.mean(axis=(2, 3), keepdims=True)
    raise SystemExit(f'unknown layer kind {kind}')
