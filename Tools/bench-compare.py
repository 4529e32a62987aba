#!/usr/bin/env python3
"""Speed of Precis against references measured in the same run, on the same machine.

DeepConvNet at batch 100: training step (forward + backward + Adam) in ms, and inference images/s.
References: the book's DeepConvNet in plain numpy (Tools/numpy_deepconvnet.py), PyTorch CPU (when
`import torch` works; install PyTorch's CPU wheel, not the default one, which brings CUDA), and ONNX
Runtime (when `import onnxruntime` works) on the weight file's ONNX exports: float32, and the stored
int8 variant as QuantizeLinear/DequantizeLinear pairs, one intra-op thread per core. `--model
resnet20` or `--model mobilenetv2` measures that preset instead (the same network written in plain
PyTorch, the shipped weight file's exports for ONNX Runtime; numpy and PyTorch's int8 are left out
for graphs). The engines take
turns for `--rounds` rounds; each figure is the median over the rounds of each round's median over
`--runs` runs. Prints each figure and Precis's ratio to it; `--json` prints every round as JSON.
With `--report`, each round also times the precision report, `precis eval` of the weight file on its
test set (the five floating modes and int8, then `--precision all`), against one float32 pass of the
numpy DeepConvNet over 10,000 images at batch 100.

    python3 Tools/bench-compare.py [--precis .build/release/precis] [--model deep|resnet20|mobilenetv2]
                                   [--weights FILE] [--runs 10] [--rounds 3] [--report] [--json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import numpy_deepconvnet  # noqa: E402 (a sibling file of this script)


def precis_figures(precis, runs, model):
    out = subprocess.run([precis, 'bench', '--model', model, '--runs', str(runs), '--json'], check=True,
                         capture_output=True, text=True).stdout
    r = json.loads(out)
    return {'train_step_ms': r['train_step_ms'],
            **{f'infer_{k}_images_per_s': v for k, v in r['inference_images_per_second'].items()}}


def numpy_figures(runs):
    """The book's DeepConvNet in plain numpy (Tools/numpy_deepconvnet.py), float32 and float64."""
    single, double = numpy_deepconvnet.figures('float32', runs), numpy_deepconvnet.figures('float64', runs)
    return {'train_step_ms': single['train_step_ms'], 'infer_float32_images_per_s': single['infer_images_per_s'],
            'infer_float64_images_per_s': double['infer_images_per_s']}


def torch_graph(model):
    """Precis's preset `model` (resnet20 or mobilenetv2, as `precis train --help` describes them) in PyTorch."""
    from torch import nn

    def unit(c_in, c_out, k, stride=1, groups=1, act=None):
        layers = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups), nn.BatchNorm2d(c_out)]
        return nn.Sequential(*layers, *([act()] if act else []))

    class Block(nn.Module):
        def __init__(self, body, shortcut, after):
            super().__init__()
            self.body, self.shortcut, self.after = body, shortcut, after

        def forward(self, x):
            y = self.body(x)
            if self.shortcut is not None:
                y = y + self.shortcut(x)
            return self.after(y)

    blocks = []
    if model == 'resnet20':
        stem, channels = unit(1, 16, 3, act=nn.ReLU), 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                s = stride if i == 0 else 1
                body = nn.Sequential(unit(channels, width, 3, s, act=nn.ReLU), unit(width, width, 3))
                shortcut = nn.Identity() if s == 1 and width == channels else unit(channels, width, 1, s)
                blocks.append(Block(body, shortcut, nn.ReLU()))
                channels = width
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    else:
        stem, channels = unit(1, 16, 3, act=nn.ReLU6), 16
        for t, width, count, stride in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 2, 2), (6, 96, 1, 1)):
            for i in range(count):
                s, hidden = (stride if i == 0 else 1), channels * t
                body = ([unit(channels, hidden, 1, act=nn.ReLU6)] if t != 1 else []) + [
                    unit(hidden, hidden, 3, s, groups=hidden, act=nn.ReLU6), unit(hidden, width, 1)]
                residual = nn.Identity() if s == 1 and width == channels else None
                blocks.append(Block(nn.Sequential(*body), residual, nn.Identity()))
                channels = width
        head = nn.Sequential(unit(channels, 320, 1, act=nn.ReLU6), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(320, 10))
    return nn.Sequential(stem, *blocks, head)


def torch_figures(runs, model):
    import torch
    from torch import nn
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)

    def conv(c_in, c_out, pad):
        return [nn.Conv2d(c_in, c_out, 3, padding=pad), nn.ReLU()]
    if model != 'deep':
        net = torch_graph(model)
    else:
        net = nn.Sequential(*conv(1, 16, 1), *conv(16, 16, 1), nn.MaxPool2d(2), *conv(16, 32, 1), *conv(32, 32, 2),
                            nn.MaxPool2d(2), *conv(32, 64, 1), *conv(64, 64, 1), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(1024, 50), nn.ReLU(),
                            nn.Dropout(0.5), nn.Linear(50, 10), nn.Dropout(0.5))
    opt = torch.optim.Adam(net.parameters(), lr=0.001, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(100, 1, 28, 28)
    t = torch.randint(0, 10, (100,))

    def median(fn):
        return numpy_deepconvnet.median_seconds(fn, runs)

    def step():
        opt.zero_grad()
        loss_fn(net(x), t).backward()
        opt.step()
    net.train()
    train = median(step)
    net.eval()
    with torch.no_grad():
        infer = median(lambda: net(x))
    figures = {'train_step_ms': 1000 * train, 'infer_float32_images_per_s': 100 / infer,
               'version': torch.__version__, 'threads': torch.get_num_threads()}
    if model != 'deep':
        return figures
    # Static int8 the eager-mode way (x86 engine, default qconfig, Conv+ReLU and Linear+ReLU fused),
    # calibrated on the timed batch, as `precis bench` calibrates its int8 network.
    import warnings
    warnings.filterwarnings('ignore')
    from torch.ao import quantization as tq
    torch.backends.quantized.engine = 'x86' if 'x86' in torch.backends.quantized.supported_engines else 'fbgemm'
    q = nn.Sequential(tq.QuantStub(), *net, tq.DeQuantStub()).eval()
    fuse = [[str(i), str(i + 1)] for i in range(1, len(q) - 1)
            if isinstance(q[i], (nn.Conv2d, nn.Linear)) and isinstance(q[i + 1], nn.ReLU)]
    q = tq.fuse_modules(q, fuse)
    q.qconfig = tq.get_default_qconfig(torch.backends.quantized.engine)
    tq.prepare(q, inplace=True)
    with torch.no_grad():
        q(x)
        tq.convert(q, inplace=True)
        infer8 = median(lambda: q(x))
    return {**figures, 'infer_int8_images_per_s': 100 / infer8}


def ort_figures(precis, weights, int8_variant, runs, work):
    """ONNX Runtime on Precis's exports of `weights`: float32, and `int8_variant` as QDQ."""
    import numpy as np
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.inter_op_num_threads = 1
    x = np.random.default_rng(0).random((100, 1, 28, 28), dtype=np.float32)
    figures = {'version': ort.__version__, 'threads': options.intra_op_num_threads}
    for name, precision in (('float32', 'float32'), ('int8', int8_variant)):
        path = os.path.join(work, f'{name}.onnx')
        if not os.path.exists(path):
            subprocess.run([precis, 'export', weights, '--onnx', path, '--precision', precision], check=True,
                           capture_output=True)
        session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        feed = {session.get_inputs()[0].name: x}
        seconds = numpy_deepconvnet.median_seconds(lambda: session.run(None, feed), runs)
        figures[f'infer_{name}_images_per_s'] = 100 / seconds
    return figures


SIX_MODES = 'float64,float32,float16,float16-acc32,bfloat16-acc32,int8'


def report_seconds(precis, weights):
    """Wall seconds of `precis eval` on `weights`: the five floating modes and int8, then every mode."""
    def wall(precision):
        start = time.perf_counter()
        subprocess.run([precis, 'eval', weights, '--quiet', '--precision', precision], check=True,
                       capture_output=True)
        return time.perf_counter() - start
    return {'report_six_modes_s': wall(SIX_MODES), 'report_all_modes_s': wall('all')}


def engines(a, work):
    """One round: every engine that is installed, in turn."""
    results = {'precis': precis_figures(a.precis, a.runs, a.model)}
    if a.model == 'deep':
        results['numpy'] = numpy_figures(a.runs)
    if a.report:
        results['precis'].update(report_seconds(a.precis, a.weights))
        results['numpy']['pass_float32_10000_images_s'] = numpy_deepconvnet.pass_seconds('float32', 10000)
    try:
        results['pytorch'] = torch_figures(a.runs, a.model)
    except ImportError:
        pass
    try:
        results['onnxruntime'] = ort_figures(a.precis, a.weights, a.int8_variant, a.runs, work)
    except ImportError:
        pass
    return results


def medians(rounds):
    """Each engine's figures: the median over the rounds of each number, other values as in the first."""
    out = {}
    for name, first in rounds[0].items():
        out[name] = {key: statistics.median(r[name][key] for r in rounds) if isinstance(value, float) else value
                     for key, value in first.items()}
    return out


def speedup(key, mine, theirs):
    """How many times faster Precis is: images/s are better higher, milliseconds lower."""
    return mine / theirs if key.endswith('images_per_s') else theirs / mine


def speed_text(x):
    return f'{x:.2f}x faster' if x >= 1 else f'{1 / x:.2f}x slower'


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--precis', default='.build/release/precis')
    ap.add_argument('--model', default='deep', choices=['deep', 'resnet20', 'mobilenetv2'])
    ap.add_argument('--weights', help='the network ONNX Runtime runs (default: the shipped Fashion-MNIST file of '
                    '--model)')
    ap.add_argument('--int8-variant', default='int8-wchannel-au8z', help="the weight file's int8 variant to export")
    ap.add_argument('--runs', type=int, default=10)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--report', action='store_true', help='also time the precision report against a numpy pass')
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args()
    a.weights = a.weights or f'Weights/{a.model}-fashion.h5'
    if a.report and a.model != 'deep':
        ap.error('--report times the numpy DeepConvNet: it goes with --model deep')

    with tempfile.TemporaryDirectory() as work:
        rounds = [engines(a, work) for _ in range(a.rounds)]
    results = medians(rounds)
    if a.json:
        print(json.dumps({'medians': results, 'rounds': rounds}, indent=1))
        return 0
    mine = results['precis']
    print(f'medians of {a.rounds} rounds of {a.runs} runs each')
    print(f"{'implementation':<16}{'figure':<30}{'value':>12}   Precis vs it")
    for name, figures in results.items():
        for key, value in figures.items():
            if not isinstance(value, float):
                continue
            ratio = ''
            if name != 'precis' and key in mine:
                # Higher is better for images/s, lower for ms: how many times faster Precis is, from
                # the medians and in each round (the engines ran back to back within a round).
                ratio = speed_text(speedup(key, mine[key], value))
                each = [speedup(key, r['precis'][key], r[name][key]) for r in rounds if key in r[name]]
                ratio += f" (rounds: {', '.join(f'{x:.2f}' for x in each)})"
            print(f'{name:<16}{key:<30}{value:>12.1f}   {ratio}')
    if a.report:
        base = results['numpy']['pass_float32_10000_images_s']
        for key, what in (('report_six_modes_s', 'six modes'), ('report_all_modes_s', 'all modes')):
            each = ', '.join(f"{r['precis'][key] / r['numpy']['pass_float32_10000_images_s']:.2f}x" for r in rounds)
            print(f'precision report, {what}: {mine[key]:.1f} s, {mine[key] / base:.2f}x the numpy float32 pass '
                  f'of {base:.1f} s (rounds: {each})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
