#!/usr/bin/env python3
"""Compares two `precis eval --json` reports of the same file and data: every precision's accuracy,
changed-prediction count and SQNR (logits and each layer). Use it to check that a code change, a
rebuild or another machine gives the same answers. Reports of schema precis.eval/1 are read, and
so are reports written before the schema field existed (flat change_* fields, "inf" strings).

    python3 Tools/compare-reports.py BEFORE.json AFTER.json [--tolerance-db 0.0]

Exit 0 when everything agrees (SQNR within the tolerance, counts exactly), 1 otherwise.
"""
import argparse
import json
import math
import sys


def number(x, exact=None):
    """A value of either form as a float: null/"inf" SQNRs become +inf when exact, else -inf."""
    if x is None:
        return math.inf if exact else -math.inf
    if isinstance(x, str):
        return {'inf': math.inf, '-inf': -math.inf}[x]
    return float(x)


def normalized(report):
    """precision -> {accuracy, correct, differs, logit_sqnr_db, layers: {name: sqnr_db or None if folded}}"""
    out = {}
    for r in report['results']:
        if 'schema' in report:
            differs = r['vs_float32']['differs']
            sqnr = number(r['logits']['sqnr_db'], r['logits']['exact'])
            layers = {l['layer']: None if l['folded'] else number(l['sqnr_db'], l['exact']) for l in r['layers']}
        else:
            differs = r['differs_from_float32']
            sqnr = number(r['logit_sqnr_db'])
            layers = {l['layer']: None if l.get('folded') else number(l['sqnr_db']) for l in r['layers']}
        out[r['precision']] = dict(accuracy=r['accuracy'], correct=r['correct'], differs=differs, logit_sqnr_db=sqnr,
                                   layers=layers)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('before')
    ap.add_argument('after')
    ap.add_argument('--tolerance-db', type=float, default=0.0, help='largest SQNR difference taken as equal')
    a = ap.parse_args()
    before, after = (normalized(json.load(open(p))) for p in (a.before, a.after))
    problems, checked = [], 0

    def same_db(x, y):
        return x == y or (math.isfinite(x) and math.isfinite(y) and abs(x - y) <= a.tolerance_db)

    if set(before) != set(after):
        problems.append(f'precisions differ: {sorted(before)} vs {sorted(after)}')
    for name in sorted(set(before) & set(after)):
        b, c = before[name], after[name]
        for key in ('accuracy', 'correct', 'differs'):
            checked += 1
            if b[key] != c[key]:
                problems.append(f'{name}: {key} {b[key]} -> {c[key]}')
        checked += 1
        if not same_db(b['logit_sqnr_db'], c['logit_sqnr_db']):
            problems.append(f"{name}: logit SQNR {b['logit_sqnr_db']} -> {c['logit_sqnr_db']}")
        for layer in b['layers']:
            x, y = b['layers'][layer], c['layers'].get(layer, 'missing')
            checked += 1
            if (x is None) != (y is None) or (x is not None and (y == 'missing' or not same_db(x, y))):
                problems.append(f'{name}: {layer} SQNR {x} -> {y}')
        print(f"{name:20} accuracy {c['accuracy']:.4f}  differs {c['differs']:5d}  logit SQNR {c['logit_sqnr_db']:.2f} dB  "
              f"{len(c['layers'])} layers")
    for p in problems:
        print('DIFFERS:', p)
    print(f'{checked} values compared, {len(problems)} differ')
    sys.exit(1 if problems else 0)


if __name__ == '__main__':
    main()
