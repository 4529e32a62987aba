"""Cross-layer equalization in numpy, by the rules Precis documents (Nagel et al. 2019): which
pairs of layers can be rescaled exactly, the closed-form scales, and the master's parameters with a
variant's stored scales and shifts applied. cle-check.py and crosscheck.py import it.

    from numpy_equalization import pairs_of, equalize
    params = equalize(layers, params, pairs_of(layers), scales, shifts)
"""
import numpy as np

PASS_THROUGH = ('ReLU', 'LeakyReLU', 'MaxPooling', 'AveragePooling', 'Dropout', 'GlobalAveragePooling')


def readers(layers):
    out = {name: [] for name, _ in layers}
    out['input'] = []
    for i, (name, layer) in enumerate(layers):
        for src in layer.get('inputs') or [layers[i - 1][0] if i else 'input']:
            out[src].append(name)
    return out


def pads(layer):
    return layer.get('pad', 0) > 0 or any(layer.get(k, 0) > 0 for k in ('pad_top', 'pad_left', 'pad_bottom', 'pad_right'))


def pairs_of(layers):
    """[(first, second, batchnorm or None, absorbs, gain)] in network order."""
    kinds, r = dict(layers), readers(layers)
    out = []
    for name, layer in layers:
        if layer['kind'] not in ('Convolution', 'Affine') or len(r[name]) != 1:
            continue
        bn, node = None, name
        if kinds[r[name][0]]['kind'] == 'BatchNormalization':
            bn = node = r[name][0]
        padded, gain = False, 1.0
        while len(r[node]) == 1:
            nxt = r[node][0]
            k = kinds[nxt]
            if k['kind'] in ('Convolution', 'Affine'):
                out.append((name, nxt, bn, not padded and not (k['kind'] == 'Convolution' and pads(k)), gain))
                break
            if k['kind'] not in PASS_THROUGH:
                break
            padded = padded or (k['kind'] in ('MaxPooling', 'AveragePooling') and k['pad'] > 0)
            gain *= 1 - k['ratio'] if k['kind'] == 'Dropout' else 1
            node = nxt
    return out


def folded(layers, params):
    """Each weighted layer's (W, b) with the batch normalization after it folded in, as float64."""
    r, kinds, out = readers(layers), dict(layers), {}
    for name, layer in layers:
        if layer['kind'] not in ('Convolution', 'Affine'):
            continue
        w, b = params[name]['W'].copy(), params[name]['b'].copy()
        if len(r[name]) == 1 and kinds[r[name][0]]['kind'] == 'BatchNormalization':
            q = params[r[name][0]]
            k = q['gamma'] / np.sqrt(q['running_var'] + 1e-5)
            w = w * (k.reshape(-1, 1, 1, 1) if layer['kind'] == 'Convolution' else k)
            b = (b - q['running_mean']) * k + q['beta']
        out[name] = (w, b)
    return out


def rows(layer, w):
    return w.reshape(w.shape[0], -1) if layer['kind'] == 'Convolution' else w.T


def input_channel(layer, w, channels):
    """The input channel each weight of the rows form of `w` reads, shaped as the rows."""
    if layer['kind'] == 'Affine':
        per = w.shape[0] // channels
        return np.broadcast_to(np.arange(w.shape[0]) // per, (w.shape[1], w.shape[0]))
    fn, local, kh, kw = w.shape
    groups = channels // local
    c = (np.arange(fn) // (fn // groups))[:, None] * local + np.arange(local)[None, :]
    return np.repeat(c, kh * kw, axis=1)


def closed_form(layers, params, pairs):
    kinds = dict(layers)
    f = folded(layers, params)
    rw = {name: rows(kinds[name], w) for name, (w, _) in f.items()}
    scales = {a: np.ones(rw[a].shape[0]) for a, *_ in pairs}
    for _ in range(100):
        moved = 0.0
        for a, b, *_ in pairs:
            ch = input_channel(kinds[b], f[b][0], rw[a].shape[0])
            r1 = np.abs(rw[a]).max(axis=1)
            r2 = np.zeros_like(r1)
            np.maximum.at(r2, ch.ravel(), np.abs(rw[b]).ravel())
            ok = (r1 > 0) & (r2 > 0)
            s = np.where(ok, np.sqrt(np.where(ok, r1, 1) / np.where(ok, r2, 1)), 1.0)
            moved = max(moved, np.abs(s - 1).max())
            scales[a] *= s
            rw[a] = rw[a] / s[:, None]
            rw[b] = rw[b] * s[ch]
        if moved < 1e-9:
            break
    return scales


def equalize(layers, params, pairs, scales, shifts):
    """The master's parameters with the pairs rescaled by `scales` and `shifts` absorbed."""
    kinds, out = dict(layers), {k: {t: v.copy() for t, v in d.items()} for k, d in params.items()}
    for a, b, bn, _, _ in pairs:
        s = scales[a]
        if bn:
            out[bn]['gamma'] /= s
            out[bn]['beta'] /= s
        else:
            out[a]['W'] = out[a]['W'] / (s.reshape(-1, 1, 1, 1) if kinds[a]['kind'] == 'Convolution' else s)
            out[a]['b'] /= s
        w = out[b]['W']
        r = rows(kinds[b], w) * s[input_channel(kinds[b], w, len(s))]
        out[b]['W'] = r.reshape(w.shape) if kinds[b]['kind'] == 'Convolution' else r.T
    for a, b, bn, _, gain in pairs:
        c = shifts[a]
        if bn:
            out[bn]['beta'] -= c
        else:
            out[a]['b'] -= c
        w = out[b]['W']
        r = rows(kinds[b], w)
        out[b]['b'] += (r * (gain * c)[input_channel(kinds[b], w, len(c))]).sum(axis=1)
    return out


def stored_equalization(group):
    """A variant group's (scales, shifts) by first layer, or None when it is not equalized."""
    if 'equalization' not in group:
        return None
    e = group['equalization']
    return {a: e[a]['scale'][()] for a in e}, {a: e[a]['shift'][()] for a in e}
