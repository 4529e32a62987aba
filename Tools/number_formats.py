"""Precis's number-format variants, read with h5py and checked with ml_dtypes and numpy alone.

`check_variant` re-derives every stored code and scale from the float32 master with its own
rounding (ml_dtypes' element types, saturating by clipping first; NumPy's round half to even) and
reports any difference; `forward` runs the variant's network in float32 with each convolution and
affine layer's input rounded the way the format says, so its predictions can be compared with
`precis eval`. Used by crosscheck.py.

The rules, as the Precis documentation states them:
- float8-e4m3/e5m2: one float32 scale per tensor, amax / element max; codes of x / scale.
- MX (OCP MX v1.0): blocks of 32 along the reduction axis, shared exponent
  floor(log2(amax)) - emax_elem clamped to -127...127, elements x / 2^e rounded and clamped;
  MXINT8 elements are k/64 with |k| <= 127.
- NVFP4: g = amax / (6*448) per tensor; per block of 16, S = e4m3(amax_b / (6*g)); elements
  e2m1(x / (S*g)), values e2m1*(S*g).
- int4: per channel or group, symmetric -7...7 or 0...15 with a zero point; the range is the
  group's own, scaled by one of 1, 0.99, ..., 0.21 (mse) or 1 (minmax).
"""
import ml_dtypes
import numpy as np

ELEMENTS = {
    'e4m3': ml_dtypes.float8_e4m3fn, 'e5m2': ml_dtypes.float8_e5m2, 'e3m2': ml_dtypes.float6_e3m2fn,
    'e2m3': ml_dtypes.float6_e2m3fn, 'e2m1': ml_dtypes.float4_e2m1fn,
}
BITS = {'e4m3': 8, 'e5m2': 8, 'e3m2': 6, 'e2m3': 6, 'e2m1': 4, 'int8': 8, 'int4': 4}
EMAX = {'e4m3': 8, 'e5m2': 15, 'e3m2': 4, 'e2m3': 2, 'e2m1': 2, 'int8': 0}
MX = {'mxfp8-e4m3': 'e4m3', 'mxfp8-e5m2': 'e5m2', 'mxfp6-e3m2': 'e3m2', 'mxfp6-e2m3': 'e2m3', 'mxfp4': 'e2m1',
      'mxint8': 'int8'}


def largest(element):
    return np.float32(ml_dtypes.finfo(ELEMENTS[element]).max)


def mode_of(name):
    """A variant name as a dict: kind, element, rounding ('nearest', 'gptq' or 'adaround'), whether the
    network was equalized first (-cle) and the kind's parameters; None if not a format."""
    base = name[:-len('-mixed')] if name.endswith('-mixed') else name
    rounding = next((r for r in ('gptq', 'adaround') if base.endswith('-' + r)), 'nearest')
    base = base[:-len(rounding) - 1] if rounding != 'nearest' else base
    equalized = base.endswith('-cle')
    mode = base_mode(base[:-len('-cle')] if equalized else base)
    return dict(mode, rounding=rounding, equalized=equalized) if mode else None


def base_mode(base):
    """A format's name without its rounding and -mixed, as mode_of's dict without the rounding."""
    if base in MX:
        return {'kind': 'mx', 'element': MX[base], 'inputs': 'mx'}
    if base == 'nvfp4':
        return {'kind': 'nvfp4', 'element': 'e2m1', 'inputs': 'nvfp4'}
    for e in ('e4m3', 'e5m2'):
        if base in (f'float8-{e}', f'float8-{e}-nosat'):
            return {'kind': 'scaled', 'element': e, 'saturating': not base.endswith('-nosat'), 'inputs': 'scaled'}
    parts = base.split('-')
    if parts[0] == 'int4' and len(parts) >= 2:
        a8 = parts[-1] == 'a8'
        parts = parts[:-1] if a8 else parts
        zero = parts[-1] == 'z'
        parts = parts[:-1] if zero else parts
        group = {'channel': None, 'g32': 32, 'g64': 64, 'g128': 128}.get(parts[1], 0) if len(parts) == 2 else 0
        if group != 0:
            return {'kind': 'int4', 'element': 'int4', 'group': group, 'zero_point': zero,
                    'inputs': 'int8' if a8 else None}
    return None


def unpack(packed, length, bits):
    """Codes (rows, length) from rows of packed bytes: code i at bits bits*i.., lowest bit first."""
    if bits == 8:
        return packed
    rows = packed.shape[0]
    stream = np.unpackbits(packed, axis=1, bitorder='little')[:, :length * bits].reshape(rows, length, bits)
    return (stream.astype(np.uint8) << np.arange(bits, dtype=np.uint8)).sum(axis=2).astype(np.uint8)


def grid(x, element, saturating=True):
    """x (float32) rounded to the element type, nearest even; saturating clips to the largest first."""
    x = np.asarray(x, np.float32)
    if saturating:
        x = np.clip(x, -largest(element), largest(element))
    return x.astype(ELEMENTS[element])


def blocks(rows, size):
    """(V, L) -> (V, B, size), zero-padded along L."""
    v, length = rows.shape
    b = -(-length // size)
    padded = np.zeros((v, b * size), np.float32)
    padded[:, :length] = rows
    return padded.reshape(v, b, size)


def mx(rows, element, size=32):
    """MX blocks: (codes (V, L), E8M0 scale codes (V, B), values (V, L))."""
    v, length = rows.shape
    x = blocks(rows, size)
    amax = np.abs(x).max(axis=2)
    _, ex = np.frexp(amax)
    e = np.where(amax > 0, np.clip(ex - 1 - EMAX[element], -127, 127), -127)
    scale = np.ldexp(np.float32(1), e).astype(np.float32)[:, :, None]
    q = (x / scale).astype(np.float32)
    if element == 'int8':
        k = np.clip(np.round(q * 64), -127, 127)
        codes, values = k.astype(np.int8).view(np.uint8), (k / 64).astype(np.float32) * scale
    else:
        g = grid(q, element)
        codes, values = g.view(np.uint8), g.astype(np.float32) * scale
    return (codes.reshape(v, -1)[:, :length], (e + 127).astype(np.uint8),
            values.reshape(v, -1)[:, :length].astype(np.float32))


def nvfp4(rows, tensor_amax):
    """NVFP4: (codes, E4M3 scale codes, the float32 tensor scale g, values)."""
    v, length = rows.shape
    g = np.float32(tensor_amax) / np.float32(6 * 448) if tensor_amax > 0 else np.float32(0)
    x = blocks(rows, 16)
    amax = np.abs(x).max(axis=2)
    if g > 0:
        s = grid((amax / (np.float32(6) * g)).astype(np.float32), 'e4m3')
    else:
        s = np.zeros(amax.shape, np.float32).astype(ELEMENTS['e4m3'])
    d = (s.astype(np.float32) * g).astype(np.float32)[:, :, None]
    safe = np.where(d > 0, d, np.float32(1))
    e = grid(np.where(d > 0, x / safe, 0).astype(np.float32), 'e2m1')
    values = (e.astype(np.float32) * d).astype(np.float32)
    return e.view(np.uint8).reshape(v, -1)[:, :length], s.view(np.uint8), g, values.reshape(v, -1)[:, :length]


def scaled(rows, element, saturating, amax):
    """One float32 scale per tensor: (codes, scale, values)."""
    s = np.float32(amax) / largest(element) if amax > 0 else np.float32(1)
    g = grid((rows / s).astype(np.float32), element, saturating)
    return g.view(np.uint8), s, (g.astype(np.float32) * s).astype(np.float32)


def int4_range(x, alpha, zero_point):
    """(scale, zero point, qmin, qmax) for a group clipped to alpha of its extent, as Precis builds it."""
    lo, hi = float(x.min()) * alpha, float(x.max()) * alpha
    if not zero_point:
        t = max(-lo, hi)
        return (float(np.float32(t / 7)) if t > 0 else 1.0), 0, -7, 7
    low, high = min(lo, 0.0), max(hi, 0.0)
    if not high > low:
        return 1.0, 0, 0, 15
    scale = float(np.float32((high - low) / 15))
    return scale, min(15, max(0, -int(np.round(low / scale)))), 0, 15


def int4_codes(x, r):
    scale, zero, qmin, qmax = r
    return np.clip(np.round(x.astype(np.float64) / scale) + zero, qmin, qmax).astype(np.int64)


def int4_error(x, r):
    q = int4_codes(x, r)
    y = ((q - r[1]) * r[0]).astype(np.float32).astype(np.float64)
    return float(np.sum((x.astype(np.float64) - y) ** 2))


def weight_rows(w):
    """A weight tensor as reduction rows: a convolution's filters, an affine W transposed."""
    return w.reshape(w.shape[0], -1) if w.ndim == 4 else w.T


def check_variant(name, group, master, text):
    """Differences between a stored format variant and the codes this module derives from the master.
    `group` is the variant's h5py group, `master` maps layer name -> {'W', 'b'} float32 arrays."""
    mode, problems = mode_of(name), []
    if mode['rounding'] != 'nearest':
        return problems  # chosen from calibration images: gptq-check.py redoes GPTQ, AdaRoundTests check AdaRound
    layers = group['model']['layers']
    for layer in layers:
        g, w = layers[layer], master[layer]['W'].astype(np.float32)
        rows = weight_rows(w)
        v, length = rows.shape
        codes = unpack(g['W'][()], length, BITS[mode['element']])
        if not np.array_equal(g['b'][()], master[layer]['b'].astype(np.float32)):
            problems.append(f'{layer}/b is not the master bias')
        if mode['kind'] == 'mx':
            want, scales, _ = mx(rows, mode['element'])
            ok = np.array_equal(codes, want) and np.array_equal(g['W_block_scale'][()], scales)
        elif mode['kind'] == 'nvfp4':
            want, scales, gscale, _ = nvfp4(rows, float(np.abs(rows).max()))
            ok = (np.array_equal(codes, want) and np.array_equal(g['W_block_scale'][()], scales)
                  and g['W_scale'][()][0] == gscale)
        elif mode['kind'] == 'scaled':
            want, s, _ = scaled(rows, mode['element'], mode['saturating'], float(np.abs(rows).max()))
            ok = np.array_equal(codes, want) and g['W_scale'][()][0] == s
        else:
            ok = check_int4(rows, codes, g, mode, text(group.attrs.get('weight_ranges', 'mse')), problems, layer)
        if not ok:
            problems.append(f'{layer}: stored codes or scales differ from ml_dtypes/numpy rounding of the master')
    return problems


def check_int4(rows, codes, g, mode, method, problems, layer):
    """Each group's stored range must be a candidate whose error is the least (within 1e-9), and its
    codes the group's values rounded with it."""
    v, length = rows.shape
    size = mode['group'] or length
    scales = g['W_scale'][()].reshape(v, -1)
    zeros = g['W_zero_point'][()].reshape(v, -1) if mode['zero_point'] else np.zeros_like(scales, np.uint8)
    alphas = [1.0] if method == 'minmax' else [1 - k / 100 for k in range(80)]
    signed = np.where(codes >= 8, codes.astype(np.int64) - 16, codes) if not mode['zero_point'] else codes
    for i in range(v):
        for k, start in enumerate(range(0, length, size)):
            x = rows[i, start:start + size]
            stored = (float(scales[i, k]), int(zeros[i, k]))
            candidates = [int4_range(x, a, mode['zero_point']) for a in alphas]
            errors = [int4_error(x, r) for r in candidates]
            match = [r for r in candidates if (r[0], r[1]) == stored]
            if not match or int4_error(x, match[0]) > min(errors) * (1 + 1e-9) + 1e-30:
                problems.append(f'{layer}: group {i},{k} range is not the least-error candidate')
                return False
            if not np.array_equal(int4_codes(x, match[0]), signed[i, start:start + size]):
                return False
    return True


def decoded_weights(name, group, shapes):
    """Each layer's weights (in its own shape) and biases decoded from the stored codes and scales."""
    mode, out = mode_of(name), {}
    layers = group['model']['layers']
    for layer in layers:
        g, shape = layers[layer], shapes[layer]
        v = shape[0] if len(shape) == 4 else shape[1]
        length = int(np.prod(shape)) // v
        codes = unpack(g['W'][()], length, BITS[mode['element']])
        if mode['kind'] == 'int4':
            size = mode['group'] or length
            idx = np.arange(length) // size
            s = g['W_scale'][()].reshape(v, -1)[:, idx].astype(np.float64)
            if mode['zero_point']:
                q = codes.astype(np.float64) - g['W_zero_point'][()].reshape(v, -1)[:, idx]
            else:
                q = np.where(codes >= 8, codes.astype(np.float64) - 16, codes)
            rows = (q * s).astype(np.float32)
        else:
            if mode['kind'] == 'mx' and mode['element'] == 'int8':
                elem = codes.view(np.int8).astype(np.float32) / 64
            else:
                elem = codes.view(ELEMENTS[mode['element']]).astype(np.float32)
            if mode['kind'] == 'mx':
                idx = np.arange(length) // 32
                scale = np.ldexp(np.float32(1), g['W_block_scale'][()].astype(np.int64) - 127).astype(np.float32)
                rows = elem * scale[:, idx]
            elif mode['kind'] == 'nvfp4':
                idx = np.arange(length) // 16
                s = g['W_block_scale'][()].view(ELEMENTS['e4m3']).astype(np.float32)
                d = (s * g['W_scale'][()][0]).astype(np.float32)
                rows = elem * d[:, idx]
            else:
                rows = elem * g['W_scale'][()][0]
        w = rows.reshape(shape) if len(shape) == 4 else rows.T
        out[layer] = {'W': w.astype(np.float32), 'b': g['b'][()].astype(np.float32), 'attrs': dict(g.attrs)}
    return out


def searched_layers(group, shapes):
    """A searched variant's layers, each decoded from the part that holds it, with the mode its input
    is rounded in: number-format parts as decoded_weights reads them; int8 codes times their scales
    (biases at input scale times weight scale) with int8 inputs; float16 layers with half inputs."""
    out, parts = {}, group['variants'] if 'variants' in group else {}
    for part in parts:
        layers = parts[part]['model']['layers']
        if part.startswith('int8-'):
            for name in layers:
                g = layers[name]
                w, s = g['W'][()].astype(np.float64), g['W_scale'][()].astype(np.float64)
                shape = [1] * w.ndim
                shape[int(g.attrs['axis'])] = -1
                scale = s.reshape(shape) if len(s) > 1 else s[0]
                b = g['b'][()].astype(np.float64) * float(g.attrs['input_scale']) * s
                out[name] = {'W': (w * scale).astype(np.float32), 'b': b.astype(np.float32), 'attrs': dict(g.attrs),
                             'mode': {'inputs': 'int8'}}
        else:
            mode = mode_of(part)
            for name, d in decoded_weights(part, parts[part], shapes).items():
                out[name] = dict(d, mode=mode)
    if 'model' in group:
        for name, g in group['model']['layers'].items():
            out[name] = {'W': g['W'][()].astype(np.float32), 'b': g['b'][()].astype(np.float32), 'attrs': {},
                         'mode': {'inputs': 'half'}}
    return out


def round_inputs(rows, mode, attrs):
    """A layer's input rows (vectors along the reduction axis) rounded as the format stores them."""
    kind = mode['inputs']
    if kind is None:
        return rows
    if kind == 'half':
        return rows.astype(np.float16).astype(np.float32)
    if kind == 'mx':
        return mx(rows, mode['element'])[2]
    if kind == 'nvfp4':
        return nvfp4(rows, float(attrs['input_amax']))[3]
    if kind == 'scaled':
        return scaled(rows, mode['element'], mode['saturating'], float(attrs['input_amax']))[2]
    s, zp = np.float32(attrs['input_scale']), np.float32(attrs['input_zero_point'])
    q = np.clip(np.round(rows / s) + zp, np.float32(attrs['input_qmin']), np.float32(attrs['input_qmax']))
    return ((q - zp) * s).astype(np.float32)
