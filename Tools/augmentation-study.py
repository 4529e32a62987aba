#!/usr/bin/env python3
"""Does data augmentation raise test accuracy? Trains each model on a data set with and without
`--augment`, over several seeds, with `precis train --json`, and prints the final test accuracy of
every run, then the mean and spread (sample standard deviation, min to max) of each arm.

    python3 Tools/augmentation-study.py [--precis .build/release/precis] [--models simple,deep]
        [--dataset mnist5k] [--epochs 20] [--seeds 0,1,2] [--augment shift:2,rotate:10,scale:0.1]
        [--json]

Exits non-zero when a run fails.
"""
import argparse
import json
import statistics
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--precis', default='.build/release/precis')
    ap.add_argument('--models', default='simple,deep')
    ap.add_argument('--dataset', default='mnist5k')
    ap.add_argument('--epochs', type=int, default=20)
    ap.add_argument('--seeds', default='0,1,2')
    ap.add_argument('--augment', default='shift:2,rotate:10,scale:0.1')
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args()

    rows = []
    for model in a.models.split(','):
        for augment in (None, a.augment):
            for seed in a.seeds.split(','):
                cmd = [a.precis, 'train', '--model', model, '--dataset', a.dataset, '--epochs', str(a.epochs),
                       '--seed', seed, '--json', '--quiet', '--no-output']
                if augment:
                    cmd += ['--augment', augment]
                out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                rows.append({'model': model, 'augment': augment or 'none', 'seed': int(seed),
                             'test_accuracy': out['test_accuracy'][-1], 'seconds': out['seconds']})
                if not a.json:
                    print(f"{model:7} {augment or 'none':28} seed {seed}: {100 * rows[-1]['test_accuracy']:.2f}% "
                          f"({rows[-1]['seconds']:.0f} s)", flush=True)
    arms = []
    for model in a.models.split(','):
        for augment in ('none', a.augment):
            acc = [r['test_accuracy'] for r in rows if r['model'] == model and r['augment'] == augment]
            arms.append({'model': model, 'augment': augment, 'runs': len(acc), 'mean': statistics.mean(acc),
                         'sd': statistics.stdev(acc) if len(acc) > 1 else 0.0, 'min': min(acc), 'max': max(acc)})
    if a.json:
        print(json.dumps({'schema': 'precis.augmentation-study/1', 'dataset': a.dataset, 'epochs': a.epochs,
                          'runs': rows, 'arms': arms}, indent=1))
        return 0
    print(f'\n{a.dataset}, {a.epochs} epochs, seeds {a.seeds}: mean test accuracy (sd; min to max)')
    for m in arms:
        print(f"{m['model']:7} {m['augment']:28} {100 * m['mean']:.2f}% (sd {100 * m['sd']:.2f}; "
              f"{100 * m['min']:.2f} to {100 * m['max']:.2f})")
    return 0


if __name__ == '__main__':
    sys.exit(main())
