#!/usr/bin/env python3
"""A network from Keras, saved as .keras and as HDF5, into Precis: the same predictions.

Builds three channels-last Sequential CNNs in Keras 3 on the torch backend: one of the book's layers
(Conv2D with `same` and `valid` padding, BatchNormalization, max and average pooling, Flatten, Dense,
Dropout), one of the other activations (hard_silu, ReLU(max_value=6), LeakyReLU, relu6, sigmoid,
hard_sigmoid, leaky_relu) and one with GlobalAveragePooling2D, each trained for one to three epochs
on mnist5k's training digits and compared on mnist5k's 1,000 test digits. Then three functional
models: a ResNet (Add, a strided 1×1 projection, BatchNormalization), a MobileNetV2-style network
(DepthwiseConv2D, ReLU(max_value=6), `same` padding with stride 2, ZeroPadding2D before a strided
depthwise convolution as keras.applications pads, inverted residual blocks) and two
branches with 1×3 and 3×1 kernels joined by Concatenate, each trained for one epoch on 12,000
Fashion-MNIST training images and compared on all 10,000 Fashion-MNIST test images. Every model is
saved with `model.save` both as `.keras` and as `.h5`, imported with `precis import`, and
`precis eval --precision float32` is compared with Keras's own predictions: every prediction must be
the same and the largest logit difference below 1e-4. A wrong transposition of the kernels, or of
the first Dense layer's rows after the Flatten, would still load and fail here. It also checks that
a model with layers Precis does not run is refused with one line per such layer, and that no file
is written.

    python3 Tools/keras-check.py [--precis .build/release/precis]

Needs keras (and torch as its backend). Prints a JSON summary; exits non-zero on a difference.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault('KERAS_BACKEND', 'torch')
import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_network import mnist5k_train, test_set  # noqa: E402


GRAPH_TRAIN_IMAGES = 12000


def models():
    """The models checked, each with its epochs and learning rate: the book's layers, the other
    activations, and global average pooling (which needs a few epochs to leave chance)."""
    layers = keras.layers
    return {
        'book-layers': (keras.Sequential([
            keras.Input((28, 28, 1)),
            layers.Conv2D(8, 3, padding='same', activation='relu'), layers.BatchNormalization(),
            layers.MaxPooling2D(2), layers.Conv2D(16, 3, padding='valid'), layers.ReLU(), layers.AveragePooling2D(2),
            layers.Flatten(), layers.Dense(32, activation='relu'), layers.Dropout(0.3), layers.Dense(10)]), 1, 1e-3),
        'activations': (keras.Sequential([
            keras.Input((28, 28, 1)),
            layers.Conv2D(8, 3, padding='same', activation='hard_silu'), layers.MaxPooling2D(2),
            layers.Conv2D(16, 3, padding='same'), layers.ReLU(max_value=6), layers.Conv2D(16, 1),
            layers.LeakyReLU(), layers.MaxPooling2D(2), layers.Conv2D(16, 3, activation='relu6'), layers.Flatten(),
            layers.Dense(32, activation='sigmoid'), layers.Dense(32, activation='hard_sigmoid'),
            layers.Dense(16, activation='leaky_relu'), layers.Dense(10)]), 1, 3e-3),
        'global-pooling': (keras.Sequential([
            keras.Input((28, 28, 1)),
            layers.Conv2D(16, 3, padding='same', activation='relu'), layers.MaxPooling2D(2),
            layers.Conv2D(32, 3, padding='same', activation='relu'), layers.MaxPooling2D(2),
            layers.Conv2D(32, 3, padding='same', activation='relu'), layers.GlobalAveragePooling2D(),
            layers.Dense(10)]), 3, 3e-3),
    }


def graphs():
    """The functional models checked on Fashion-MNIST."""
    layers = keras.layers

    def bn():
        # Moving averages that settle within one short epoch.
        return layers.BatchNormalization(momentum=0.9)

    def conv_bn(x, filters, kernel, stride=1, relu=True):
        x = layers.Conv2D(filters, kernel, strides=stride, padding='same', use_bias=False)(x)
        x = bn()(x)
        return layers.ReLU()(x) if relu else x

    def residual(x, filters, stride):
        y = conv_bn(conv_bn(x, filters, 3, stride), filters, 3, relu=False)
        shortcut = x if stride == 1 and x.shape[-1] == filters else conv_bn(x, filters, 1, stride, relu=False)
        return layers.ReLU()(layers.Add()([y, shortcut]))

    def inverted(x, filters, stride, expand=4):
        y = layers.Conv2D(x.shape[-1] * expand, 1, use_bias=False)(x)
        y = layers.ReLU(max_value=6)(bn()(y))
        if stride == 2:
            # As keras.applications.MobileNetV2 pads before a strided depthwise convolution.
            y = layers.ZeroPadding2D(((0, 1), (0, 1)))(y)
        y = layers.DepthwiseConv2D(3, strides=stride, padding='same' if stride == 1 else 'valid', use_bias=False)(y)
        y = layers.ReLU(max_value=6)(bn()(y))
        y = bn()(layers.Conv2D(filters, 1, use_bias=False)(y))
        return layers.Add()([x, y]) if stride == 1 and x.shape[-1] == filters else y

    def model(body):
        inputs = keras.Input((28, 28, 1))
        return keras.Model(inputs, layers.Dense(10)(body(inputs)))

    def resnet(x):
        x = residual(residual(conv_bn(x, 16, 3), 16, 1), 32, 2)
        return layers.GlobalAveragePooling2D()(x)

    def mobilenet(x):
        x = layers.ReLU(max_value=6)(bn()(layers.Conv2D(16, 3, strides=2, padding='same')(x)))
        x = inverted(inverted(inverted(x, 16, 1), 24, 2), 24, 1)
        x = layers.Conv2D(64, 1, activation='relu6')(x)
        return layers.GlobalAveragePooling2D()(x)

    def branches(x):
        x = layers.MaxPooling2D(2)(layers.Conv2D(8, 3, padding='same', activation='relu')(x))
        a = layers.Conv2D(8, (1, 3), padding='same', activation='relu')(x)
        b = layers.Conv2D(8, (3, 1), padding='same', dilation_rate=(2, 1), activation='relu')(x)
        x = layers.Concatenate()([a, b, x])
        x = layers.Conv2D(16, 3, strides=(2, 1), padding='same', activation='relu')(x)
        return layers.Flatten()(x)

    return {'resnet': (model(resnet), 1, 3e-3), 'mobilenetv2-style': (model(mobilenet), 1, 3e-3),
            'two-branch-concat': (model(branches), 1, 3e-3)}


def check(name, model, epochs, lr, precis, x, t, test, dataset):
    """Trains `model`, saves it as .keras and as HDF5, imports both and evaluates them against Keras."""
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x.transpose(0, 2, 3, 1), t, batch_size=100, epochs=epochs, verbose=0)
    test_x, labels = test
    keras_logits = model.predict(test_x.astype(np.float32).transpose(0, 2, 3, 1), verbose=0).astype(np.float64)
    runs = []
    for saved in ('keras', 'h5'):
        with tempfile.TemporaryDirectory() as tmp:
            path, h5 = os.path.join(tmp, 'model.' + saved), os.path.join(tmp, 'imported.h5')
            model.save(path)
            imported = subprocess.run([precis, 'import', path, '--dataset', dataset, '--output', h5], check=True,
                                      capture_output=True, text=True).stdout.splitlines()
            subprocess.run([precis, 'eval', h5, '--precision', 'float32', '--quiet', '--save-logits',
                            os.path.join(tmp, 'p')], check=True, stdout=subprocess.DEVNULL)
            precis_logits = np.fromfile(os.path.join(tmp, 'p-float32.f64')).reshape(len(labels), -1)
        runs.append({
            'model': name, 'saved_as': saved, 'dataset': dataset, 'images': len(labels),
            'prediction_differences': int((keras_logits.argmax(1) != precis_logits.argmax(1)).sum()),
            'max_abs_logit_difference': float(np.abs(keras_logits - precis_logits).max()),
            'keras_accuracy': float((keras_logits.argmax(1) == labels).mean()),
            'precis_accuracy': float((precis_logits.argmax(1) == labels).mean()), 'precis_import': imported,
        })
    return runs


def refusal(precis):
    """A model with layers Precis does not run (a tanh, a Conv2DTranspose): its refusal, which must name
    both, one line each under the line naming the file, and whether it was clean."""
    layers = keras.layers
    inputs = keras.Input((28, 28, 1))
    x = layers.Conv2DTranspose(4, 3)(layers.Activation('tanh')(layers.Conv2D(4, 3)(inputs)))
    odd = keras.Model(inputs, layers.Dense(10)(layers.Flatten()(x)))
    with tempfile.TemporaryDirectory() as tmp:
        odd_path, odd_h5 = os.path.join(tmp, 'odd.keras'), os.path.join(tmp, 'odd-imported.h5')
        odd.save(odd_path)
        refused = subprocess.run([precis, 'import', odd_path, '--dataset', 'mnist5k', '--output', odd_h5],
                                 capture_output=True, text=True)
        lines = refused.stderr.strip().splitlines()
        return lines, (refused.returncode == 1 and len(lines) == 3 and 'tanh' in lines[1]
                       and 'Conv2DTranspose' in lines[2] and not os.path.exists(odd_h5))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--precis', default='.build/release/precis')
    a = ap.parse_args()
    keras.utils.set_random_seed(0)
    (x, t), test = mnist5k_train(), test_set('mnist5k')
    runs = [r for name, (model, epochs, lr) in models().items()
            for r in check(name, model, epochs, lr, a.precis, x, t, test, 'mnist5k')]
    fx, ft = test_set('fashion-mnist', 'train')
    fx, ft, test = fx[:GRAPH_TRAIN_IMAGES].astype(np.float32), ft[:GRAPH_TRAIN_IMAGES], test_set('fashion-mnist')
    runs += [r for name, (model, epochs, lr) in graphs().items()
             for r in check(name, model, epochs, lr, a.precis, fx, ft, test, 'fashion-mnist')]
    message, refused_cleanly = refusal(a.precis)
    print(json.dumps({'keras_version': keras.__version__, 'backend': keras.backend.backend(), 'runs': runs,
                      'unsupported_layers': message}, indent=1))
    bad = [r for r in runs if r['prediction_differences'] or r['max_abs_logit_difference'] >= 1e-4]
    for r in bad:
        print(f"keras-check: FAIL: {r['model']} ({r['saved_as']}): {r['prediction_differences']} predictions differ, "
              f"largest logit difference {r['max_abs_logit_difference']:.3g}", file=sys.stderr)
    if not refused_cleanly:
        print(f'keras-check: FAIL: the unsupported layers were not refused cleanly: {message}', file=sys.stderr)
    if bad or not refused_cleanly:
        sys.exit(1)
    print('keras-check: passed')


if __name__ == '__main__':
    main()
