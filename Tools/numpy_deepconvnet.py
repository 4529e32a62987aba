#!/usr/bin/env python3
"""The book's DeepConvNet in plain numpy (im2col convolution, max pooling, Affine, ReLU, Dropout,
softmax with cross-entropy, Adam): the baseline `bench-compare.py` times Precis against. It uses
the book's algorithms as written, so its speed is what a reader's numpy version achieves.

    python3 Tools/numpy_deepconvnet.py [--dtype float32] [--runs 5]

prints the median training step (forward, backward, Adam on a batch of 100) and inference rate as JSON.
"""
import argparse
import json
import time

import numpy as np


def im2col(x, k, stride, pad):
    """(N, C, H, W) -> (N·OH·OW, C·k·k), and OH, OW."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    img = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    col = np.empty((n, c, k, k, oh, ow), dtype=x.dtype)
    for y in range(k):
        for xx in range(k):
            col[:, :, y, xx] = img[:, :, y:y + stride * oh:stride, xx:xx + stride * ow:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1), oh, ow


def col2im(col, shape, k, stride, pad, oh, ow):
    """The adjoint of im2col: overlapping windows add up."""
    n, c, h, w = shape
    col = col.reshape(n, oh, ow, c, k, k).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((n, c, h + 2 * pad + stride - 1, w + 2 * pad + stride - 1), dtype=col.dtype)
    for y in range(k):
        for xx in range(k):
            img[:, :, y:y + stride * oh:stride, xx:xx + stride * ow:stride] += col[:, :, y, xx]
    return img[:, :, pad:h + pad, pad:w + pad]


class Conv:
    def __init__(self, w, b, pad):
        self.W, self.b, self.pad = w, b, pad

    def forward(self, x, train):
        fn, _, k, _ = self.W.shape
        self.x = x
        self.col, oh, ow = im2col(x, k, 1, self.pad)
        self.colW = self.W.reshape(fn, -1).T
        self.oh, self.ow = oh, ow
        return (self.col @ self.colW + self.b).reshape(x.shape[0], oh, ow, -1).transpose(0, 3, 1, 2)

    def backward(self, dout):
        fn, c, k, _ = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, fn)
        self.db = dout.sum(axis=0)
        self.dW = (self.col.T @ dout).T.reshape(fn, c, k, k)
        return col2im(dout @ self.colW.T, self.x.shape, k, 1, self.pad, self.oh, self.ow)


class Pool:
    def forward(self, x, train):
        n, c, h, w = x.shape
        self.x = x
        col, oh, ow = im2col(x, 2, 2, 0)
        col = col.reshape(-1, 4)
        self.arg = col.argmax(axis=1)
        self.oh, self.ow = oh, ow
        return col.max(axis=1).reshape(n, oh, ow, c).transpose(0, 3, 1, 2)

    def backward(self, dout):
        dout = dout.transpose(0, 2, 3, 1)
        dmax = np.zeros((dout.size, 4), dtype=dout.dtype)
        dmax[np.arange(self.arg.size), self.arg] = dout.ravel()
        return col2im(dmax.reshape(dout.shape[0] * self.oh * self.ow, -1), self.x.shape, 2, 2, 0, self.oh, self.ow)


class Affine:
    def __init__(self, w, b):
        self.W, self.b = w, b

    def forward(self, x, train):
        self.shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return self.x @ self.W + self.b

    def backward(self, dout):
        self.dW, self.db = self.x.T @ dout, dout.sum(axis=0)
        return (dout @ self.W.T).reshape(self.shape)


class ReLU:
    def forward(self, x, train):
        self.mask = x <= 0
        return np.where(self.mask, 0, x)

    def backward(self, dout):
        return np.where(self.mask, 0, dout)


class Dropout:
    def __init__(self, ratio, rng):
        self.ratio, self.rng = ratio, rng

    def forward(self, x, train):
        if not train:
            return x * x.dtype.type(1 - self.ratio)
        self.mask = self.rng.random(x.shape) > self.ratio
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


def deep_convnet(dtype, seed=0):
    """DeepConvNet with He-initialized weights in `dtype`."""
    rng = np.random.default_rng(seed)
    layers, c = [], 1
    for f, pad, pool in [(16, 1, False), (16, 1, True), (32, 1, False), (32, 2, True), (64, 1, False), (64, 1, True)]:
        w = (rng.standard_normal((f, c, 3, 3)) * np.sqrt(2 / (c * 9))).astype(dtype)
        layers += [Conv(w, np.zeros(f, dtype), pad), ReLU()] + ([Pool()] if pool else [])
        c = f
    w1 = (rng.standard_normal((1024, 50)) * np.sqrt(2 / 1024)).astype(dtype)
    layers += [Affine(w1, np.zeros(50, dtype)), ReLU(), Dropout(0.5, rng)]
    w2 = (rng.standard_normal((50, 10)) * np.sqrt(2 / 50)).astype(dtype)
    layers += [Affine(w2, np.zeros(10, dtype)), Dropout(0.5, rng)]
    return layers


def train_step(layers, x, t, adam):
    """Forward, softmax cross-entropy, backward and one Adam update."""
    for layer in layers:
        x = layer.forward(x, True)
    y = np.exp(x - x.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    d = y.copy()
    d[np.arange(len(t)), t] -= 1
    d /= len(t)
    for layer in reversed(layers):
        d = layer.backward(d)
    adam([p for layer in layers if hasattr(layer, 'W') for p in ((layer, 'W'), (layer, 'b'))])


def make_adam(lr=0.001, beta1=0.9, beta2=0.999):
    state = {'t': 0, 'm': {}, 'v': {}}

    def update(params):
        state['t'] += 1
        rate = lr * np.sqrt(1 - beta2 ** state['t']) / (1 - beta1 ** state['t'])
        for layer, name in params:
            key, value, grad = (id(layer), name), getattr(layer, name), getattr(layer, 'd' + name)
            m = state['m'].setdefault(key, np.zeros_like(value))
            v = state['v'].setdefault(key, np.zeros_like(value))
            m += (1 - beta1) * (grad - m)
            v += (1 - beta2) * (grad ** 2 - v)
            value -= (rate * m / (np.sqrt(v) + 1e-7)).astype(value.dtype)
    return update


def median_seconds(fn, runs):
    """Median wall seconds of `runs` calls of `fn`, after three untimed calls (thread pools and
    memory arenas, such as ONNX Runtime's, settle in the first few)."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def figures(dtype='float32', runs=5):
    """Median training-step milliseconds and inference images/s at batch 100."""
    rng = np.random.default_rng(1)
    x = rng.random((100, 1, 28, 28)).astype(dtype)
    t = rng.integers(0, 10, 100)
    layers, adam = deep_convnet(dtype), make_adam()
    step = median_seconds(lambda: train_step(layers, x, t, adam), runs)

    def infer():
        y = x
        for layer in layers:
            y = layer.forward(y, False)
    return {'train_step_ms': 1000 * step, 'infer_images_per_s': 100 / median_seconds(infer, runs)}


def pass_seconds(dtype='float32', images=10000, batch=100):
    """Seconds of one inference pass over `images` images (random, 28 x 28) in batches of `batch`."""
    x = np.random.default_rng(2).random((images, 1, 28, 28)).astype(dtype)
    layers = deep_convnet(dtype)
    start = time.perf_counter()
    for i in range(0, images, batch):
        y = x[i:i + batch]
        for layer in layers:
            y = layer.forward(y, False)
    return time.perf_counter() - start


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--dtype', default='float32', choices=['float32', 'float64'])
    ap.add_argument('--runs', type=int, default=5)
    a = ap.parse_args()
    print(json.dumps({'dtype': a.dtype, **figures(a.dtype, a.runs)}))
