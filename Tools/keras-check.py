#!/usr/bin/env python3
"""A network from Keras, saved as HDF5, into Precis: the same predictions.

Builds three channels-last CNNs in Keras 3 on the torch backend: one of the book's layers (Conv2D
with `same` and `valid` padding, BatchNormalization, max and average pooling, Flatten, Dense,
Dropout), one of the other activations (hard_silu, ReLU(max_value=6), LeakyReLU, relu6, sigmoid,
hard_sigmoid, leaky_relu) and one with GlobalAveragePooling2D. Each is trained for one to three
epochs on mnist5k's training digits, saved with `model.save("x.h5")`, imported with
`precis import`, and `precis eval --precision float32` is compared with Keras's own predictions on
mnist5k's 1,000 test digits: every prediction must be the same and the largest logit difference
below 1e-4. A wrong transposition of the kernels, or of the first Dense layer's rows after the
Flatten, would still load and fail here. It also checks that a model with a layer Precis does not
run is refused with one line naming the layer, and that no file is written.

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


def check(name, model, epochs, lr, precis, x, t, test):
    """Trains `model`, saves it as HDF5, imports and evaluates it against Keras."""
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x.transpose(0, 2, 3, 1), t, batch_size=100, epochs=epochs, verbose=0)
    test_x, labels = test
    keras_logits = model.predict(test_x.astype(np.float32).transpose(0, 2, 3, 1), verbose=0).astype(np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        path, h5 = os.path.join(tmp, 'keras.h5'), os.path.join(tmp, 'imported.h5')
        model.save(path)
        imported = subprocess.run([precis, 'import', path, '--dataset', 'mnist5k', '--output', h5], check=True,
                                  capture_output=True, text=True).stdout.splitlines()
        subprocess.run([precis, 'eval', h5, '--precision', 'float32', '--quiet', '--save-logits',
                        os.path.join(tmp, 'p')], check=True, stdout=subprocess.DEVNULL)
        precis_logits = np.fromfile(os.path.join(tmp, 'p-float32.f64')).reshape(len(labels), -1)
    return {
        'model': name, 'images': len(labels),
        'prediction_differences': int((keras_logits.argmax(1) != precis_logits.argmax(1)).sum()),
        'max_abs_logit_difference': float(np.abs(keras_logits - precis_logits).max()),
        'keras_accuracy': float((keras_logits.argmax(1) == labels).mean()),
        'precis_accuracy': float((precis_logits.argmax(1) == labels).mean()), 'precis_import': imported,
    }


def refusal(precis):
    """A model with a layer Precis does not run: its one-line refusal, and whether it was clean."""
    layers = keras.layers
    odd = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(4, 3), layers.Activation('tanh'),
                            layers.Flatten(), layers.Dense(10)])
    with tempfile.TemporaryDirectory() as tmp:
        odd_path, odd_h5 = os.path.join(tmp, 'odd.h5'), os.path.join(tmp, 'odd-imported.h5')
        odd.save(odd_path)
        refused = subprocess.run([precis, 'import', odd_path, '--dataset', 'mnist5k', '--output', odd_h5],
                                 capture_output=True, text=True)
        message = refused.stderr.strip()
        return message, (refused.returncode == 1 and len(message.splitlines()) == 1 and 'tanh' in message
                         and not os.path.exists(odd_h5))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--precis', default='.build/release/precis')
    a = ap.parse_args()
    keras.utils.set_random_seed(0)
    (x, t), test = mnist5k_train(), test_set('mnist5k')
    runs = [check(name, model, epochs, lr, a.precis, x, t, test)
            for name, (model, epochs, lr) in models().items()]
    message, refused_cleanly = refusal(a.precis)
    print(json.dumps({'keras_version': keras.__version__, 'backend': keras.backend.backend(), 'runs': runs,
                      'unsupported_layer': message}, indent=1))
    bad = [r for r in runs if r['prediction_differences'] or r['max_abs_logit_difference'] >= 1e-4]
    for r in bad:
        print(f"keras-check: FAIL: {r['model']}: {r['prediction_differences']} predictions differ, largest logit "
              f"difference {r['max_abs_logit_difference']:.3g}", file=sys.stderr)
    if not refused_cleanly:
        print(f'keras-check: FAIL: the unsupported layer was not refused cleanly: {message}', file=sys.stderr)
    if bad or not refused_cleanly:
        sys.exit(1)
    print('keras-check: passed')


if __name__ == '__main__':
    main()
