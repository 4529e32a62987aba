#!/usr/bin/env python3
"""A network from Keras, saved as HDF5, into Precis: the same predictions.

Builds a channels-last CNN in Keras 3 on the torch backend (Conv2D with `same` and `valid`
padding, BatchNormalization, max and average pooling, Flatten, Dense, Dropout), trains it for one
epoch on mnist5k's training digits, saves it with `model.save("x.h5")`, imports it with
`precis import`, and compares `precis eval --precision float32` with Keras's own predictions on
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--precis', default='.build/release/precis')
    a = ap.parse_args()
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(8, 3, padding='same', activation='relu'), layers.BatchNormalization(), layers.MaxPooling2D(2),
        layers.Conv2D(16, 3, padding='valid'), layers.ReLU(), layers.AveragePooling2D(2),
        layers.Flatten(), layers.Dense(32, activation='relu'), layers.Dropout(0.3), layers.Dense(10)])
    x, t = mnist5k_train()
    model.compile(optimizer='adam', loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x.transpose(0, 2, 3, 1), t, batch_size=100, epochs=1, verbose=0)
    test_x, labels = test_set('mnist5k')
    keras_logits = model.predict(test_x.astype(np.float32).transpose(0, 2, 3, 1), verbose=0).astype(np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        path, h5 = os.path.join(tmp, 'keras.h5'), os.path.join(tmp, 'imported.h5')
        model.save(path)
        imported = subprocess.run([a.precis, 'import', path, '--dataset', 'mnist5k', '--output', h5], check=True, capture_output=True,
                                  text=True).stdout.splitlines()
        subprocess.run([a.precis, 'eval', h5, '--precision', 'float32', '--quiet', '--save-logits',
                        os.path.join(tmp, 'p')], check=True, stdout=subprocess.DEVNULL)
        precis_logits = np.fromfile(os.path.join(tmp, 'p-float32.f64')).reshape(len(labels), -1)

        odd = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(4, 3), layers.LeakyReLU(),
                                layers.Flatten(), layers.Dense(10)])
        odd_path, odd_h5 = os.path.join(tmp, 'odd.h5'), os.path.join(tmp, 'odd-imported.h5')
        odd.save(odd_path)
        refused = subprocess.run([a.precis, 'import', odd_path, '--dataset', 'mnist5k', '--output', odd_h5],
                                 capture_output=True, text=True)
        refusal = refused.stderr.strip()
        refused_cleanly = (refused.returncode == 1 and len(refusal.splitlines()) == 1
                           and 'LeakyReLU' in refusal and not os.path.exists(odd_h5))
    differ = int((keras_logits.argmax(1) != precis_logits.argmax(1)).sum())
    largest = float(np.abs(keras_logits - precis_logits).max())
    summary = {
        'keras_version': keras.__version__, 'backend': keras.backend.backend(), 'images': len(labels),
        'prediction_differences': differ, 'max_abs_logit_difference': largest,
        'keras_accuracy': float((keras_logits.argmax(1) == labels).mean()),
        'precis_accuracy': float((precis_logits.argmax(1) == labels).mean()), 'precis_import': imported,
        'unsupported_layer': refusal,
    }
    print(json.dumps(summary, indent=1))
    if differ or largest >= 1e-4 or not refused_cleanly:
        print(f'keras-check: FAIL: {differ} predictions differ, largest logit difference {largest:.3g}, '
              f'unsupported layer refused cleanly: {refused_cleanly}', file=sys.stderr)
        sys.exit(1)
    print('keras-check: passed')


if __name__ == '__main__':
    main()
