#!/usr/bin/env bash
# End-to-end check of the precis command line on real data: train, evaluate, and bad input that
# must give one `precis: error:` line and a non-zero exit. Usage: Tools/cli-check.sh [path/to/precis]
set -euo pipefail
precis="${1:-.build/release/precis}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "cli-check: FAIL: $*" >&2; exit 1; }

"$precis" train --model simple --dataset mnist5k --epochs 1 --quiet --output "$work/s.h5" > "$work/train.txt"
grep -q "test accuracy .* after 1 epoch;" "$work/train.txt" || fail "train printed no summary (or '1 epochs')"
"$precis" train --no-output --model "conv(4,5) relu maxpool(2) affine(10)" --dataset mnist5k --epochs 1 --quiet > /dev/null
"$precis" export "$work/s.h5" --precision float16 > /dev/null
"$precis" eval "$work/s.h5" --precision all --json --quiet --record > "$work/eval.json"
"$precis" inspect "$work/s.h5" --json > "$work/inspect.json"
h5dump -H "$work/s.h5" > "$work/dump.txt"
grep -q 'GROUP "00_conv1"' "$work/dump.txt" || fail "h5dump does not show the layers"
python3 - "$work/eval.json" <<'PY' || fail "eval JSON"
import json, sys
r = json.load(open(sys.argv[1]))
modes = {x["precision"]: x for x in r["results"]}
formats = {"float8-e4m3", "float8-e5m2", "mxfp8-e4m3", "mxfp8-e5m2", "mxfp6-e3m2", "mxfp6-e2m3", "mxfp4", "mxint8",
           "nvfp4", "int4-channel", "int4-g32", "int4-g128-z", "int4-g32-a8"}
assert set(modes) == {"float64", "float32", "float16", "float16-acc32", "bfloat16-acc32"} | formats, modes
assert all(modes[f]["bits_per_weight"] > 4 and "bits_per_weight" not in modes["float32"] for f in formats)
assert r["images"] == 1000 and r["dataset"] == "mnist5k"
assert r["schema"] == "precis.eval/1" and modes["float32"]["vs_float32"]["differs"] == 0
assert all(0.5 < m["accuracy"] <= 1 for m in modes.values())
assert modes["float16"]["weights"] == "/variants/float16"
f32 = modes["float32"]
assert f32["vs_float32"]["change_pp"] == 0 and f32["vs_float32"]["agreement"] == 1 and f32["model_ratio_to_float32"] == 1
assert modes["float64"]["logits"]["sqnr_db"] is None and modes["float64"]["logits"]["exact"]
assert 100 < f32["logits"]["sqnr_db"] < 200
for m in modes.values():
    c = m["vs_float32"]
    assert len(m["layers"]) == 6 and c["ci95_low_pp"] <= c["change_pp"] <= c["ci95_high_pp"]
    assert m["images_per_second"] > 0 and m["model_bytes"] > 0
assert modes["float16-acc32"]["model_ratio_to_float32"] == 0.5
PY
"$precis" eval "$work/s.h5" --precision float32,float16 --explain float16 --limit 200 --quiet > "$work/explain.txt"
grep -q "explain float16: float32 with one layer at a time" "$work/explain.txt" || fail "eval --explain printed no ranking"
[ "$(grep -c '^[0-9][0-9]_' "$work/explain.txt")" -eq 12 ] || fail "eval --explain: expected 6 layer rows per table"
python3 -c 'import h5py' 2>/dev/null && python3 - "$work/s.h5" <<'PY' || fail "recorded evaluation"
import h5py, sys
e = h5py.File(sys.argv[1], "r")["evaluations"]
g = e["float16"]
assert len(g.attrs["layer_sqnr_db"]) == 6 and g.attrs["images"] == 1000 and "change_low" in g.attrs, dict(g.attrs)
# The recorded answers agree with the recorded counts.
p16, p32 = g["predicted"][:], e["float32"]["predicted"][:]
assert p16.shape == (1000,) and "test_index" not in g and p16.min() >= 0 and p16.max() <= 9
assert (p16 != p32).sum() == g.attrs["differs_from_float32"], ((p16 != p32).sum(), g.attrs["differs_from_float32"])
PY
python3 - "$work/inspect.json" <<'PY' || fail "inspect JSON"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["parameters"] == 433890 and r["model"] == "simple"
assert {s["precision"]: s["ratio_to_float32"] for s in r["storage"]} == {"float32": 1.0, "float16": 0.5}
assert {s["precision"]: s["bits_per_value"] for s in r["storage"]} == {"float32": 32, "float16": 16}
assert r["schema"] == "precis.inspect/1"
floats = {"float64", "float32", "float16", "float16-acc32", "bfloat16-acc32"}
assert {e["result"]["precision"] for e in r["evaluations"]} - floats == {"mxfp4", "nvfp4", "int4-g32", "float8-e4m3", "mxint8",
    "mxfp8-e4m3", "mxfp8-e5m2", "mxfp6-e3m2", "mxfp6-e2m3", "float8-e5m2", "int4-channel", "int4-g128-z", "int4-g32-a8"}
PY
# `--precision int8` before any int8 variant is stored: the default scheme, calibrated now.
"$precis" eval "$work/s.h5" --precision float32,int8 --limit 300 --json --quiet > "$work/int8now.json"
python3 - "$work/int8now.json" <<'PY' || fail "eval --precision int8 without a stored variant"
import json, sys
r = {x["precision"]: x for x in json.load(open(sys.argv[1]))["results"]}
q = r["int8-wchannel-au8z"]
assert q["weights"].startswith("calibrated now: mse, 500 training images") and abs(q["accuracy"] - r["float32"]["accuracy"]) < 0.03, q
PY
"$precis" quantize "$work/s.h5" --compare --scheme wchannel-au8z,wtensor-as8 --calibration minmax,entropy --calibration-size 100 \
    --bias-correction --limit 300 --json --quiet > "$work/quant.json"
python3 - "$work/quant.json" <<'PY' || fail "quantize JSON"
import json, sys
r = json.load(open(sys.argv[1]))
# 4 static runs, the same 4 bias-corrected, 2 dynamic (min-max)
assert r["schema"] == "precis.quantize-compare/1"
assert r["calibration_images"] == 100 and r["images"] == 300 and len(r["runs"]) == 10
assert sorted(x["calibration"] for x in r["runs"]) == sorted(["minmax", "entropy", "minmax+bc", "entropy+bc", "dynamic"] * 2)
accs = [x["accuracy"] for x in r["runs"]]
assert accs == sorted(accs, reverse=True), accs
# Runs that keep the logits (above 15 dB) stay near float32; entropy calibration of signed
# activations on this barely trained network clips hard (under 10 dB) and may not.
assert all(abs(x["accuracy"] - r["float32_accuracy"]) < 0.05 for x in r["runs"] if x["logits"]["sqnr_db"] > 15), r["runs"]
assert all(0.2 < x["model_ratio_to_float32"] < 0.3 and x["images_per_second"] > 0 for x in r["runs"])
assert all(x["differs_from_fake_quant"] <= 1 for x in r["runs"])  # 99.9% at 1,000 images
best = min(r["runs"], key=lambda x: (x["vs_float32"]["differs"], -x["accuracy"], x["model_bytes"]))
assert r["recommended"]["scheme"] == best["scheme"] and r["recommended"]["calibration"] == best["calibration"], (r["recommended"], best)
for x in r["runs"]:  # per-layer SQNR at each quantized layer's output
    assert [l["layer"] for l in x["layers"]] == ["00_conv1", "03_affine1", "05_affine2"], x["layers"]
    assert [l["output_of"] for l in x["layers"]] == ["02_maxpool1", "04_relu2", "05_affine2"], x["layers"]
    assert all(5 < l["errors"]["sqnr_db"] < 80 and 20 < l["weight_sqnr_db"] < 80 for l in x["layers"]), x["layers"]
PY
"$precis" quantize "$work/s.h5" --scheme wchannel-au8z --calibration percentile --calibration-size 100 --quiet > "$work/store.txt"
grep -q "stored /variants/int8-wchannel-au8z" "$work/store.txt" || fail "quantize did not store a variant"
"$precis" quantize "$work/s.h5" --scheme wtensor-as8 --calibration minmax --calibration-size 100 --sensitivity --limit 300 --json --quiet > "$work/sens.json"
python3 - "$work/sens.json" <<'PY' || fail "quantize --sensitivity"
import json, sys
r = json.load(open(sys.argv[1]))
layers = r["sensitivity"]
assert [l["layer"] for l in sorted(layers, key=lambda l: l["layer"])] == ["00_conv1", "03_affine1", "05_affine2"], layers
assert all(20 < l["weight_sqnr_db"] < 80 and l["vs_float32"]["ci95_low_pp"] <= l["vs_float32"]["change_pp"] <= l["vs_float32"]["ci95_high_pp"]
           for l in layers)
assert [l["vs_float32"]["change_pp"] for l in layers] == sorted(l["vs_float32"]["change_pp"] for l in layers)
PY
"$precis" quantize "$work/s.h5" --scheme wtensor-as8 --calibration minmax --calibration-size 100 --max-drop 0 --bias-correction --limit 300 \
    --json --quiet > "$work/mixed.json"
python3 - "$work/mixed.json" <<'PY' || fail "quantize --max-drop"
import json, sys
r = json.load(open(sys.argv[1]))
steps = r["mixed_precision"]
assert r["bias_correction"] is True and 0.5 < r["without_bias_correction"]["accuracy"] <= 1
assert steps[0]["float_layers"] == [] and steps[-1]["result"]["vs_float32"]["change_pp"] >= 0, steps
assert all(len(s["float_layers"]) == k for k, s in enumerate(steps))
assert r["variant"] == "int8-wtensor-as8-mixed" and r["float_layers"] == sorted(steps[-1]["float_layers"]), r
open(sys.argv[1] + ".accuracy", "w").write(repr(r["result"]["accuracy"]))
PY
"$precis" quantize "$work/s.h5" --scheme wchannel-as8 --calibration entropy --calibration-size 100 --max-drop 0 --fallback float16 \
    --limit 300 --json --quiet > "$work/mixed16.json"
python3 - "$work/mixed16.json" <<'PY' || fail "quantize --fallback float16"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["variant"] == "int8-wchannel-as8-mixed" and r["fallback"] == "float16", r
open(sys.argv[1] + ".accuracy", "w").write(repr(r["result"]["accuracy"]))
PY
"$precis" eval "$work/s.h5" --precision int8-wchannel-as8-mixed --limit 300 --json --quiet > "$work/evalmixed16.json"
python3 - "$work/evalmixed16.json" "$(cat "$work/mixed16.json.accuracy")" <<'PY' || fail "eval of the float16 mixed variant"
import json, sys
r = {x["precision"]: x for x in json.load(open(sys.argv[1]))["results"]}
assert r["int8-wchannel-as8-mixed"]["accuracy"] == float(sys.argv[2]), (r["int8-wchannel-as8-mixed"]["accuracy"], sys.argv[2])
PY
"$precis" quantize "$work/s.h5" --scheme wtensor-au8z --dynamic --limit 300 --json --quiet > "$work/dynamic.json"
"$precis" eval "$work/s.h5" --precision int8-wtensor-au8z-dynamic --limit 300 --json --quiet > "$work/evaldynamic.json"
python3 - "$work/dynamic.json" "$work/evaldynamic.json" <<'PY' || fail "stored dynamic variant"
import json, sys
q = json.load(open(sys.argv[1]))
r = json.load(open(sys.argv[2]))["results"][0]
assert q["variant"] == "int8-wtensor-au8z-dynamic" and r["precision"] == q["variant"] and r["accuracy"] == q["result"]["accuracy"], (q, r)
PY
h5dump -A -g /variants/int8-wtensor-au8z-dynamic/model/layers/00_conv1 "$work/s.h5" | grep -q 'H5T_IEEE_F32LE' || fail "h5dump shows no float32 biases"
# The stored mixed variant runs from the file and gives exactly the accuracy quantize printed.
"$precis" eval "$work/s.h5" --precision float32,int8-wtensor-as8-mixed --limit 300 --json --quiet > "$work/evalmixed.json"
python3 - "$work/evalmixed.json" "$(cat "$work/mixed.json.accuracy")" <<'PY' || fail "eval of the mixed variant"
import json, sys
r = {x["precision"]: x for x in json.load(open(sys.argv[1]))["results"]}
assert r["int8-wtensor-as8-mixed"]["accuracy"] == float(sys.argv[2]), (r["int8-wtensor-as8-mixed"]["accuracy"], sys.argv[2])
PY
"$precis" eval "$work/s.h5" --precision float32,int8-wchannel-au8z --json --quiet > "$work/eval8.json"
python3 - "$work/eval8.json" <<'PY' || fail "eval of the int8 variant"
import json, sys
r = {x["precision"]: x for x in json.load(open(sys.argv[1]))["results"]}
q = r["int8-wchannel-au8z"]
assert q["weights"] == "/variants/int8-wchannel-au8z" and abs(q["accuracy"] - r["float32"]["accuracy"]) < 0.02, q
assert 0.2 < q["model_ratio_to_float32"] < 0.3
# Per-layer errors where the integer path has values of its own; conv1, relu1 and relu2 fold into requantizations.
assert q["integer"] and [l["layer"] for l in q["layers"] if l["folded"]] == ["00_conv1", "01_relu1", "03_affine1"], q["layers"]
assert all(10 < l["sqnr_db"] < 80 for l in q["layers"] if not l["folded"]), q["layers"]
PY
h5dump -A -g /variants/int8-wchannel-au8z/model/layers/00_conv1 "$work/s.h5" | grep -q 'H5T_STD_I8LE' || fail "h5dump shows no int8 weights"
"$precis" eval "$work/s.h5" --precision float32 --explain int8-wchannel-au8z --limit 300 --json --quiet > "$work/explain8.json"
python3 - "$work/explain8.json" <<'PY' || fail "eval --explain of a stored int8 variant"
import json, sys
e = json.load(open(sys.argv[1]))["explain"]
assert e["precision"] == "int8-wchannel-au8z" and sorted(l["layer"] for l in e["layers"]) == ["00_conv1", "03_affine1", "05_affine2"], e
assert e["simulated"] and all(l["vs_float32"]["ci95_low_pp"] <= l["vs_float32"]["change_pp"] <= l["vs_float32"]["ci95_high_pp"]
                             and 15 < l["logits"]["sqnr_db"] < 90 for l in e["layers"]), e
PY

# A network with batch normalization and average pooling: they run in float between int8 layers.
"$precis" train --model "conv(8,3,pad=1) batchnorm relu avgpool(2) conv(8,3,stride=2) relu affine(10)" --dataset mnist5k --epochs 1 \
    --quiet --output "$work/bn.h5" > /dev/null
"$precis" quantize "$work/bn.h5" --compare --scheme wchannel-au8z --calibration minmax --limit 200 --json --quiet \
    --record > "$work/bnq.json"
"$precis" eval "$work/bn.h5" --precision float32,int8 --limit 200 --json --quiet > "$work/bne.json"
python3 - "$work/bnq.json" "$work/bne.json" <<'PY' || fail "int8 around batch normalization"
import json, sys
q = json.load(open(sys.argv[1]))
static = [x for x in q["runs"] if x["calibration"] == "minmax"][0]
assert static["differs_from_fake_quant"] == 0 and abs(static["accuracy"] - q["float32_accuracy"]) < 0.03, static
r = {x["precision"]: x for x in json.load(open(sys.argv[2]))["results"]}
assert abs(r["int8-wchannel-au8z"]["accuracy"] - r["float32"]["accuracy"]) < 0.03 and r["int8-wchannel-au8z"]["logits"]["sqnr_db"] > 25, r
PY

# A graph: an input normalization, a residual sum, two branches concatenated and a broadcast product;
# stored int8 and NVFP4 variants, checked by h5py and numpy, and through ONNX Runtime and back.
"$precis" train --model "conv(8,3,pad=1) relu :a conv(8,3,pad=1) add(a) relu maxpool(2) :b @b conv(4,1) :l @b conv(4,3,pad=1) \
    concat(l,03_relu2)" --dataset mnist5k --epochs 1 --quiet --no-output 2> "$work/err.txt" \
  && fail "a graph with a misnamed branch trained"
grep -q "no layer is named '03_relu2' before it" "$work/err.txt" || fail "graph naming error: $(cat "$work/err.txt")"
"$precis" train --model "conv(8,3,pad=1) relu :a conv(8,3,pad=1) add(a) relu maxpool(2) :b @b conv(4,1) :l @b conv(4,3,pad=1) \
    concat(l,07_conv4) :c gap conv(8,1) sigmoid mul(c) relu maxpool(2) affine(10)" --dataset mnist5k --epochs 2 --quiet \
    --normalize auto --output "$work/graph.h5" > /dev/null
"$precis" quantize "$work/graph.h5" --scheme wchannel-au8z --calibration mse --quiet > /dev/null
"$precis" quantize "$work/graph.h5" --format nvfp4 --quiet > /dev/null
"$precis" inspect "$work/graph.h5" > "$work/graph.txt"
grep -q "04_add1 .* 03_conv2 02_relu1 " "$work/graph.txt" || fail "inspect does not show what a graph's layers read"
grep -q "^input normalized per channel: mean (0.13" "$work/graph.txt" || fail "inspect does not show the normalization"
python3 "$(dirname "$0")/crosscheck.py" "$work/graph.h5" --precis "$precis" > "$work/gcross.json" || fail "crosscheck of a graph"
python3 "$(dirname "$0")/onnx-check.py" "$work/graph.h5" --precis "$precis" > "$work/gonnx.json" || fail "onnx-check of a graph"

"$precis" eval "$work/s.h5" --precision float32,float16 --limit 100 --report "$work/evalreport" --quiet > "$work/er.txt"
grep -q "evalreport/index.html: .* charts" "$work/er.txt" && [ -s "$work/evalreport/precision-sqnr.svg" ] || fail "eval --report"
# The picture report: for both shipped files and for a custom model, a page and well-formed SVG charts.
for f in Weights/deep-fashion.h5 Weights/simple-mnist5k.h5 "$work/bn.h5"; do
  "$precis" report "$f" --output "$work/report" > /dev/null
  "$precis" inspect "$f" --json > "$work/inspect.json"
  python3 - "$work/report" "$f" "$work/inspect.json" <<'PY' || fail "report of $f"
import glob, json, os, re, sys, xml.etree.ElementTree as ET
folder, name, inspect = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
page = open(os.path.join(folder, "index.html")).read()
charts = sorted(glob.glob(os.path.join(folder, "*.svg")))
titles = {os.path.basename(c): ET.parse(c).getroot().find("{http://www.w3.org/2000/svg}title").text for c in charts}
names = list(titles)
assert "loss.svg" in names and "accuracy.svg" in names and any(n.endswith("-initial.svg") for n in names), names
assert page.count("<svg") == len(charts) and "<script" not in page, (page.count("<svg"), len(charts))
# Every mode but float32 has a chart of its changed answers; where the evaluation is recorded, the
# chart counts as many changed images as the record's differs_from_float32.
recorded = {e["result"]["precision"]: e["result"]["vs_float32"]["differs"] for e in inspect["evaluations"]}
changed = {n[len("changed-"):-4]: t for n, t in titles.items() if n.startswith("changed-")}
assert changed and "float32" not in changed, names
for mode, title in changed.items():
    differ = re.match(r".*: (\d+) of \d+ answers differ", title)
    count = int(differ.group(1)) if differ else 0
    assert mode not in recorded or recorded[mode] == count, (mode, count, recorded[mode])
assert any(n.startswith("int8-weights-") for n in names) == any(n.startswith("int8") for n in changed), names
assert ("compare-change.svg" in names) == (not name.endswith("simple-mnist5k.h5")), names
PY
  rm -rf "$work/report"
done
python3 -c 'import h5py' 2>/dev/null && python3 "$(dirname "$0")/crosscheck.py" "$work/s.h5" --precis "$precis" > "$work/cross.txt"

expect_error() {  # expect_error PATTERN COMMAND...: non-zero exit, one stderr line matching PATTERN
  local pattern=$1; shift
  if "$@" > "$work/out.txt" 2> "$work/err.txt"; then fail "expected failure: $*"; fi
  [ "$(wc -l < "$work/err.txt")" -eq 1 ] || fail "expected one error line from: $* (got: $(cat "$work/err.txt"))"
  grep -q -- "$pattern" "$work/err.txt" || fail "error for '$*' does not match '$pattern': $(cat "$work/err.txt")"
}
expect_error "no such file" "$precis" eval "$work/missing.h5"
# A forged comparison table is refused with one line naming the file and the group.
cp "$work/bn.h5" "$work/forged.h5"
python3 -c 'import h5py, sys; h5py.File(sys.argv[1], "r+")["comparisons/int8"].attrs["report"] = "{}"' "$work/forged.h5"
expect_error "forged.h5: /comparisons/int8 attribute report is not a precis.quantize-compare/1 report" \
  "$precis" report "$work/forged.h5" --output "$work/forged-report"
printf 'garbage' > "$work/bad.h5"
expect_error "bad.h5: not an HDF5 file" "$precis" eval "$work/bad.h5"
head -c 2000 "$work/s.h5" > "$work/cut.h5"
expect_error "cut.h5: " "$precis" eval "$work/cut.h5"
expect_error "has no variant 'int8-wtensor-as8z'" "$precis" eval "$work/s.h5" --precision int8-wtensor-as8z
expect_error "no such directory" "$precis" train --no-output --data "$work/nowhere" --epochs 1 --quiet
usage_error() {  # usage_error PATTERN COMMAND...: exit code 64 and the parser's message matching PATTERN
  local pattern=$1 code=0; shift
  "$@" > "$work/out.txt" 2> "$work/err.txt" || code=$?
  [ "$code" -eq 64 ] || fail "expected exit code 64 from: $* (got $code)"
  grep -q -- "$pattern" "$work/err.txt" || fail "error for '$*' does not match '$pattern': $(cat "$work/err.txt")"
}
usage_error "unknown data set 'cifar'" "$precis" eval "$work/s.h5" --dataset cifar
# CIFAR-10's binary batches and an .npz of channels-last images, written in the formats' own layouts by
# numpy: a bright square in the first channel, placed by the class, over faint noise. A network trains
# on each with --data and finds the squares; eval finds the data set again from the weight file.
python3 - "$work" <<'PY'
import numpy as np, os, sys
rng = np.random.default_rng(0)
def images(n, side, grid, classes, last):
    y = rng.integers(0, classes, n)
    x = rng.integers(0, 64, (n, 3, side, side), dtype=np.uint8)
    b = side // grid
    for k in range(n):
        r, c = divmod(int(y[k]), grid)
        x[k, 0, r * b:(r + 1) * b, c * b:(c + 1) * b] = 255
    return (x.transpose(0, 2, 3, 1) if last else x), y
d = os.path.join(sys.argv[1], 'cifar')
os.makedirs(d, exist_ok=True)
for name, n in [('data_batch_1.bin', 300), ('test_batch.bin', 100)]:
    x, y = images(n, 32, 4, 10, False)
    np.concatenate([y.astype(np.uint8)[:, None], x.reshape(n, -1)], axis=1).tofile(os.path.join(d, name))
x, y = images(300, 12, 2, 4, True)
np.savez(os.path.join(sys.argv[1], 'own.npz'), x_train=x[:200], y_train=y[:200], x_test=x[200:], y_test=y[200:])
PY
for data in "cifar:conv(4,3,pad=1) relu maxpool(4) affine(10)" "own.npz:conv(4,3,pad=1) relu maxpool(3) affine(4)"; do
  "$precis" train --model "${data#*:}" --data "$work/${data%%:*}" --epochs 10 --batch-size 20 --quiet --force --output "$work/data.h5" \
    > /dev/null || fail "training on --data ${data%%:*}"
  "$precis" eval "$work/data.h5" --precision float32 --json --quiet > "$work/data.json" || fail "eval on ${data%%:*}"
  python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["images"] == 100 and r["results"][0]["accuracy"] >= 0.9, (r["images"], r["results"][0]["accuracy"])' \
    "$work/data.json" || fail "the network trained on ${data%%:*} does not find the squares"
done
usage_error "unknown precision 'float8'" "$precis" eval "$work/s.h5" --precision float32,float8
usage_error "float32 is the reference" "$precis" eval "$work/s.h5" --explain float32
usage_error "unknown precision 'float61'" "$precis" eval "$work/s.h5" --explain float61
usage_error "storing a variant needs one --scheme" "$precis" quantize "$work/s.h5"
usage_error "- wtensor-as8" "$precis" quantize "$work/s.h5" --compare --scheme w4
usage_error "needs one --scheme" "$precis" quantize "$work/s.h5" --dynamic --scheme all
usage_error "invalid for '--fallback" "$precis" quantize "$work/s.h5" --max-drop 1 --fallback float8
usage_error "input-scale must be a positive" "$precis" eval "$work/s.h5" --input-scale=-1
usage_error "exists (use --force" "$precis" train --model simple --epochs 1 --output "$work/s.h5" --quiet
usage_error "normal:STD" "$precis" train --no-output --init glorot --epochs 1 --quiet
usage_error "invalid for '--optimizer" "$precis" train --no-output --optimizer adamw --epochs 1 --quiet
usage_error "Did you mean 'eval'" "$precis" evl "$work/s.h5"
usage_error "--report draws the file --output writes" "$precis" train --no-output --epochs 1 --report "$work/tr"
usage_error "unknown layer 'bogus'" "$precis" train --no-output --model "bogus(3)" --epochs 1 --quiet
# Numbers a user can type: checked before use, one clear message, never a signal.
usage_error "a space inside the argument" "$precis" train --no-output --model "conv(6 5,3) relu affine(10)" --epochs 1
usage_error "'stride' is given twice" "$precis" train --no-output --model "conv(6,5,1,stride=2) affine(10)" --epochs 1
usage_error "'pad' is given twice" "$precis" train --no-output --model "conv(6,5,pad=1,pad=2) affine(10)" --epochs 1
usage_error "an empty argument" "$precis" train --no-output --model "conv(6,,5) affine(10)" --epochs 1
usage_error "batch-size must be from 1" "$precis" train --no-output --batch-size 9223372036854775807 --epochs 1
usage_error "epochs must be from 1" "$precis" train --no-output --epochs 0
usage_error "runs must be from 1" "$precis" bench --runs 0
usage_error "runs must be from 1" "$precis" bench --runs=-1
usage_error "PRECIS_KERNELS=avx3 is not a kernel level" env PRECIS_KERNELS=avx3 "$precis" eval "$work/s.h5"
# Every kernel level gives the same logits, bit for bit: the AVX-512, AVX2 and portable kernels
# (direct convolution, GEMMs, strict half, the int8 GEMM) where this CPU has them.
for level in default avx2 portable; do
  env PRECIS_KERNELS="${level/default/}" "$precis" eval Weights/deep-fashion.h5 --limit 300 --quiet \
    --precision float64,float32,float16,bfloat16-acc32,int8,mxfp4 --save-logits "$work/kernels-$level" > /dev/null
done
for f in "$work"/kernels-default-*.f64; do
  for level in avx2 portable; do
    cmp -s "$f" "${f/kernels-default/kernels-$level}" || fail "$level kernels change $(basename "$f")"
  done
done
[ "$(ls "$work"/kernels-default-*.f64 | wc -l)" -eq 6 ] || fail "expected logits of 6 precisions"
usage_error "limit must be positive" "$precis" eval "$work/s.h5" --limit 0
usage_error "learning-rate must be positive" "$precis" train --no-output --learning-rate=-1 --epochs 1
usage_error "invalid for '--lr-schedule" "$precis" train --no-output --lr-schedule step:1:inf --epochs 1
usage_error "needs size 1...1024" "$precis" train --no-output --model "conv(6,5,pad=9223372036854775807) affine(10)" --epochs 1 --quiet
usage_error "needs 1...65536 filters" "$precis" train --no-output --model "conv(3037000500,5) affine(10)" --epochs 1 --quiet
usage_error "needs size 1...1024" "$precis" train --no-output --model "conv(6,5,stride=9223372036854775807) affine(10)" --epochs 1 --quiet
expect_error "more than the .* of memory here" "$precis" train --no-output --model "affine(1000000) affine(1000000) affine(10)" --epochs 1 --quiet
expect_error "training diverged at iteration" "$precis" train --optimizer sgd --learning-rate 1e10 --epochs 1 --quiet \
  --output "$work/diverged.h5"
[ ! -e "$work/diverged.h5" ] || fail "a diverged run wrote its weights"
# import: numpy archives in the book's layout, written here by numpy itself (stored and deflated,
# float64 and Fortran-ordered float32), read into exactly the float32 values numpy holds; damaged,
# object-holding and mis-shaped archives refused with one line.
python3 - "$work" <<'PY' || fail "writing npz archives"
import numpy as np, sys
w = sys.argv[1]
rng = np.random.default_rng(1)
shapes = {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (4320, 100), "b2": (100,), "W3": (100, 10), "b3": (10,)}
a = {k: rng.normal(0, 0.1, s) for k, s in shapes.items()}
np.savez(f"{w}/book.npz", **a)
np.savez_compressed(f"{w}/bookz.npz", **{k: np.asfortranarray(v.astype(np.float32)) for k, v in a.items()})
np.savez(f"{w}/object.npz", **{**a, "W1": np.array([1, "x"], dtype=object)})
np.savez(f"{w}/shape.npz", **{**a, "W2": a["W2"].T})
np.savez(f"{w}/extra.npz", **{**a, "W4": a["W3"]})
PY
"$precis" import "$work/book.npz" --dataset mnist5k --model simple --output "$work/book.h5" --attribution "test notice" > /dev/null
"$precis" import "$work/bookz.npz" --dataset mnist5k --model simple --output "$work/bookz.h5" > /dev/null
python3 - "$work" <<'PY' || fail "import of an npz archive"
import h5py, numpy as np, sys
w = sys.argv[1]
a = np.load(f"{w}/book.npz")
names = {"W1": "00_conv1/W", "b1": "00_conv1/b", "W2": "03_affine1/W", "b2": "03_affine1/b", "W3": "05_affine2/W", "b3": "05_affine2/b"}
for path in ("book.h5", "bookz.h5"):
    f = h5py.File(f"{w}/{path}", "r")
    for k, key in names.items():
        assert np.array_equal(f["model/layers/" + key][()], a[k].astype(np.float32)), (path, k)
    text = lambda v: v.decode() if isinstance(v, bytes) else v
    m = {k: text(v) for k, v in f["model"].attrs.items()}
    assert m["source_format"].startswith("npz") and m["source_file"] == path[:-3] + ".npz" and "training" not in f, m
    assert m["attribution"] == ("test notice" if path == "book.h5" else ""), m
PY
"$precis" eval "$work/book.h5" --precision float32,float16 --limit 100 --quiet > /dev/null || fail "eval of an imported file"
expect_error "W1: an object array (Python objects, not numbers) is not read" \
  "$precis" import "$work/object.npz" --dataset mnist5k --model simple --output "$work/o.h5"
expect_error "W2 has shape (100,4320), 03_affine1/W needs (4320,100)" \
  "$precis" import "$work/shape.npz" --dataset mnist5k --model simple --output "$work/o.h5"
expect_error "holds W4, which the model has no layer for" "$precis" import "$work/extra.npz" --dataset mnist5k --model simple --output "$work/o.h5"
head -c 30000 "$work/book.npz" > "$work/cut.npz"
expect_error "cut.npz: " "$precis" import "$work/cut.npz" --dataset mnist5k --model simple --output "$work/o.h5"
[ ! -e "$work/o.h5" ] && ! ls -A "$work" | grep -q '\.part$' || fail "a refused import left a file"
usage_error "give --model" "$precis" import "$work/book.npz" --dataset mnist5k --output "$work/o.h5"
# ONNX: the custom network (batch normalization, average pooling) through ONNX Runtime and back;
# damaged and unsupported models refused with one line naming the node.
python3 "$(dirname "$0")/onnx-check.py" "$work/bn.h5" --precis "$precis" > "$work/onnx.json" || fail "onnx-check of a custom model"
"$precis" export "$work/bn.h5" --onnx "$work/bn.onnx" > /dev/null
head -c 3000 "$work/bn.onnx" > "$work/cut.onnx"
expect_error "cut.onnx: " "$precis" import "$work/cut.onnx" --dataset mnist5k --output "$work/o.h5"
python3 - "$work/bn.onnx" "$work/tanh.onnx" <<'PY'
import onnx, sys
m = onnx.load(sys.argv[1])
m.graph.node[2].op_type = "Tanh"
onnx.save(m, sys.argv[2])
PY
expect_error "tanh.onnx: node 02_relu1 (Tanh) is not supported" "$precis" import "$work/tanh.onnx" --dataset mnist5k --output "$work/o.h5"
# Several nodes it cannot import: all of them, one line each under the line naming the file.
python3 - "$work/bn.onnx" "$work/two.onnx" <<'PY'
import onnx, sys
m = onnx.load(sys.argv[1])
m.graph.node[2].op_type, m.graph.node[3].op_type = "Tanh", "Erf"
onnx.save(m, sys.argv[2])
PY
if "$precis" import "$work/two.onnx" --dataset mnist5k --output "$work/o.h5" 2> "$work/err.txt"; then fail "two.onnx imported"; fi
[ "$(cat "$work/err.txt")" = "precis: error: $work/two.onnx: 2 nodes cannot be imported:
  node 02_relu1 (Tanh) is not supported
  node 03_avgpool1 (Erf) is not supported" ] || fail "two unsupported nodes: $(cat "$work/err.txt")"
[ ! -e "$work/o.h5" ] || fail "a refused import left a file"
usage_error "bn.onnx holds its architecture: no --model" "$precis" import "$work/bn.onnx" --dataset mnist5k --model simple --output "$work/o.h5"
# The small number formats: the table, and raw float32 values to codes.
"$precis" formats --json | python3 -c 'import json, sys; t = json.load(sys.stdin); assert t["schema"] == "precis.formats/1" and [f["max"] for f in t["formats"]][:5] == [448, 57344, 28, 7.5, 6], t' \
  || fail "formats --json"
python3 -c 'import struct; open("'"$work"'/v.f32", "wb").write(struct.pack("<4f", 0.25, 0.75, 5.0, 1e9))'
"$precis" formats --encode e2m1 --input "$work/v.f32" --output "$work/v.codes"
[ "$(od -An -tu1 "$work/v.codes" | tr -s ' ')" = " 0 2 6 7" ] || fail "formats --encode e2m1"
printf 'abc' > "$work/odd.f32"
expect_error "odd.f32: holds 3 bytes, not a whole number of float32 values" \
  "$precis" formats --encode e4m3 --input "$work/odd.f32" --output "$work/odd.codes"
usage_error "needs --input and --output" "$precis" formats --encode e4m3
"$precis" --version | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+$' || fail "precis --version"
"$precis" eval "$work/s.h5" --precision bfloat16 --limit 100 --json --quiet > "$work/bf.json"
python3 -c 'import json,sys; assert [r["precision"] for r in json.load(open(sys.argv[1]))["results"]] == ["bfloat16-acc32"]' "$work/bf.json" \
  || fail "--precision bfloat16 does not run bfloat16-acc32"
# Number formats: a stored variant gives the answers quantize measured; misuse is refused.
"$precis" quantize "$work/s.h5" --format mxfp4 --limit 300 --json --quiet > "$work/mx.json"
"$precis" eval "$work/s.h5" --precision mxfp4,nvfp4,int4-g32-a8 --explain mxfp4 --limit 300 --json --quiet \
  > "$work/evalmx.json"
python3 - "$work/mx.json" "$work/evalmx.json" <<'PY' || fail "number formats"
import json, sys
q, e = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
r = {x["precision"]: x for x in e["results"]}
assert q["variant"] == "mxfp4" and r["mxfp4"]["weights"] == "/variants/mxfp4", (q, r["mxfp4"]["weights"])
assert r["mxfp4"]["accuracy"] == q["result"]["accuracy"], (r["mxfp4"]["accuracy"], q["result"]["accuracy"])
assert 4.25 <= r["mxfp4"]["bits_per_weight"] < 4.4 and 4.5 <= r["nvfp4"]["bits_per_weight"] < 4.7, r
assert r["nvfp4"]["weights"].startswith("/model rounded now") and r["int4-g32-a8"]["integer"] is False
assert [l["layer"] for l in sorted(e["explain"]["layers"], key=lambda l: l["layer"])] == ["00_conv1", "03_affine1", "05_affine2"]
PY
usage_error "is invalid for '--format" "$precis" quantize "$work/s.h5" --format mxfp5
usage_error "no --compare" "$precis" quantize "$work/s.h5" --format mxfp4 --compare
usage_error "applies to the int4 formats only" "$precis" quantize "$work/s.h5" --format mxfp4 --calibration mse
usage_error "--resume continues the checkpoint's run" "$precis" train --no-output --resume "$work/s.h5" --epochs 3
expect_error "s.h5: /checkpoint is missing: not a checkpoint" "$precis" train --no-output --resume "$work/s.h5" --quiet
"$precis" train --model simple --dataset mnist5k --epochs 1 --precision mixed-float16 --quiet --output "$work/mixed.h5" > /dev/null
"$precis" inspect "$work/mixed.h5" --json | python3 -c 'import json, sys; t = json.load(sys.stdin)["training"]; assert t["precision"] == "mixed-float16" and t["final_loss_scale"] >= 1 and t["skipped_steps"] >= 0, t' \
  || fail "mixed-precision training record"
usage_error "--loss-scale goes with --precision mixed" "$precis" train --no-output --loss-scale 4 --epochs 1
usage_error "is invalid for '--precision" "$precis" train --no-output --precision float8 --epochs 1
usage_error "is invalid for '--augment" "$precis" train --no-output --augment shift:9 --epochs 1
usage_error "a mirrored digit is not the same digit" "$precis" train --no-output --augment flip --epochs 1 --quiet
usage_error "unknown precision 'int4-g16'" "$precis" eval "$work/s.h5" --precision int4-g16
# Pure float16 training records what half loses.
"$precis" train --model simple --dataset mnist5k --epochs 1 --precision float16 --optimizer momentum --json \
  --output "$work/half.h5" > "$work/half.json"
"$precis" inspect "$work/half.h5" --json > "$work/half-inspect.json"
python3 - "$work/half.json" "$work/half-inspect.json" <<'PY' || fail "float16 training record"
import json, sys
t, i = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))["training"]
assert t["precision"] == "float16" == i["precision"] and len(t["unchanged_fraction"]) == 1, (t["precision"], i)
assert 0 < t["unchanged_fraction"][0] <= 1 and [u["layer"] for u in t["gradient_underflow"]] == ["00_conv1", "03_affine1", "05_affine2"]
assert all(u["zero"] + u["subnormal"] <= u["total"] for u in t["gradient_underflow"])
PY
expect_error "squared-gradient averages are 0 in float16" "$precis" train --model simple --dataset mnist5k --epochs 1 \
  --precision float16 --optimizer adam --quiet --output "$work/adam-half.h5"
# K15: without --optimizer, float16 training takes momentum (Adam's averages underflow in half) and says so.
"$precis" train --model simple --dataset mnist5k --epochs 1 --precision float16 --no-output > "$work/half-default.txt"
grep -q "momentum lr" "$work/half-default.txt" || fail "float16 training does not default to momentum"
# Quantization-aware training: the stored variant gives the answers it reported, post-training
# quantization is what quantize stores, and the record says where the network came from. int8 learns
# its step sizes (LSQ).
cp Weights/simple-mnist5k.h5 "$work/ptq.h5"
for f in int4-channel "int8 --learn-scales"; do
  n=${f%% *}
  "$precis" train --qat $f --from Weights/simple-mnist5k.h5 --epochs 1 --json --output "$work/qat-$n.h5" > "$work/qat-$n.json"
done
"$precis" quantize "$work/ptq.h5" --format int4-channel --json --quiet > "$work/ptq.json"
"$precis" eval "$work/qat-int4-channel.h5" --precision int4-channel --json --quiet > "$work/qat-eval.json"
"$precis" eval "$work/qat-int8.h5" --precision int8-wchannel-au8z --json --quiet > "$work/qat-eval8.json"
"$precis" inspect "$work/qat-int8.h5" --json > "$work/qat-inspect.json"
python3 - "$work" <<'PY' || fail "quantization-aware training"
import json, sys
w = sys.argv[1]
q4, q8, p = (json.load(open(f"{w}/{n}.json")) for n in ("qat-int4-channel", "qat-int8", "ptq"))
e4, e8 = (json.load(open(f"{w}/{n}.json"))["results"][0] for n in ("qat-eval", "qat-eval8"))
t = json.load(open(f"{w}/qat-inspect.json"))["training"]
assert q4["schema"] == "precis.qat/1" and q4["variant"] == "int4-channel" and q8["variant"] == "int8-wchannel-au8z"
assert q8["learned_steps"] is True and q4["learned_steps"] is False, (q8["learned_steps"], q4["learned_steps"])
assert e4["accuracy"] == q4["qat"]["accuracy"] and e8["accuracy"] == q8["qat"]["accuracy"], (e4, e8)
assert e4["weights"] == "/variants/int4-channel" and e8["integer"] is True, (e4["weights"], e8["integer"])
assert q4["ptq"]["accuracy"] == p["result"]["accuracy"], (q4["ptq"], p["result"])
assert t["started_from"] == "simple-mnist5k.h5" and t["quantization_aware"] == "int8-wchannel-au8z", t
PY
usage_error "--qat: unknown format 'int9'" "$precis" train --no-output --qat int9 --from "$work/s.h5"
usage_error "give --from FILE" "$precis" train --no-output --qat mxfp4
usage_error "--from starts from a trained network" "$precis" train --no-output --from "$work/s.h5" --model deep
usage_error "--calibration chooses the int8 input ranges" "$precis" train --no-output --calibration mse
usage_error "not of mxfp4" "$precis" train --no-output --qat mxfp4 --from "$work/s.h5" --calibration mse
expect_error "nowhere.h5" "$precis" train --no-output --qat int8 --from "$work/nowhere.h5" --quiet
# What a new user broke: one check per item (C1 ... K21), each with the exact command, its exit
# code and message, and that no file changed (sha256, mode, owner, link target).
snapshot() { for f in "$@"; do [ -e "$f" ] || [ -L "$f" ] && stat -L -c '%n %a %u:%g' "$f" && readlink "$f" && sha256sum < "$f"; done 2>/dev/null; true; }
cp Weights/simple-mnist5k.h5 "$work/u.h5"
# C1: a repeated mode, or two names of one, runs once; repeated schemes and calibrations too.
"$precis" eval "$work/u.h5" --precision float16,float16,bfloat16,bfloat16-acc32 --limit 50 --json --quiet > "$work/c1.json"
python3 -c 'import json,sys; r=[x["precision"] for x in json.load(open(sys.argv[1]))["results"]]; assert r == ["float16", "bfloat16-acc32"], r' "$work/c1.json" || fail "C1 eval"
"$precis" quantize "$work/u.h5" --compare --scheme wchannel-au8z,wchannel-au8z --calibration minmax,minmax --limit 50 --json --quiet > "$work/c1q.json"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["runs"]; assert len(r) == 2, len(r)' "$work/c1q.json" || fail "C1 quantize"
# W1: logits that are not all finite are no answer: wrong, never agreeing, and counted.
"$precis" eval "$work/u.h5" --precision float32,float16 --input-scale 1e9 --first 50 --json --quiet > "$work/w1.json"
python3 - "$work/w1.json" <<'PY' || fail "W1"
import json, sys
r = {x["precision"]: x for x in json.load(open(sys.argv[1]))["results"]}
c = r["float16"]["vs_float32"]
assert r["float16"]["accuracy"] == 0 and c["unanswered"] == 50 and c["differs"] == 50 and c["agreement"] == 0, c
PY
# W2, W3, K20: MNIST-format folders with labels the network lacks, with no test images, or with two files of a kind.
python3 - "$work" <<'PY'
import gzip, os, struct, sys
def idx(path, kind, data, dims):
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 8, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data))
for name, test_labels, test_count in [("labels", [0, 1, 10, 255], 4), ("empty", [], 0), ("both", [0, 1, 2, 3], 4)]:
    d = os.path.join(sys.argv[1], name)
    os.makedirs(d)
    idx(f"{d}/train-images-idx3-ubyte", 3, [7] * 8 * 784, [8, 28, 28])
    idx(f"{d}/train-labels-idx1-ubyte", 1, list(range(8)), [8])
    idx(f"{d}/t10k-images-idx3-ubyte", 3, [7] * test_count * 784, [test_count, 28, 28])
    idx(f"{d}/t10k-labels-idx1-ubyte", 1, test_labels, [test_count])
both = os.path.join(sys.argv[1], "both")
open(f"{both}/t10k-labels-idx1-ubyte.gz", "wb").write(gzip.compress(open(f"{both}/t10k-labels-idx1-ubyte", "rb").read()))
PY
expect_error "has label 255, but the network knows 10 classes" "$precis" eval "$work/u.h5" --data "$work/labels"
expect_error "has label 255, but the network knows 10 classes" "$precis" quantize "$work/u.h5" --data "$work/labels" --compare
expect_error "t10k-images-idx3-ubyte: holds no images" "$precis" eval "$work/u.h5" --data "$work/empty"
expect_error "holds t10k-labels-idx1-ubyte and t10k-labels-idx1-ubyte.gz: keep one of them" "$precis" eval "$work/u.h5" --data "$work/both"
# W4: replacing a variant drops its records; a record whose weights changed elsewhere is left out.
"$precis" quantize "$work/u.h5" --scheme wchannel-au8z --calibration minmax --calibration-size 100 --quiet > /dev/null
"$precis" eval "$work/u.h5" --precision float32,int8-wchannel-au8z,float16 --record --quiet > /dev/null
"$precis" quantize "$work/u.h5" --scheme wchannel-au8z --calibration entropy --calibration-size 100 --quiet > /dev/null
python3 -c 'import h5py,sys; e=h5py.File(sys.argv[1],"r")["evaluations"]; assert "int8-wchannel-au8z" not in e and "float16" in e, list(e)' "$work/u.h5" || fail "W4: a replaced variant kept its record"
python3 -c 'import h5py,sys; d=h5py.File(sys.argv[1],"r+")["variants/float16/model/layers/05_affine2/b"]; d[0] = d[0] + 1' "$work/u.h5"
"$precis" inspect "$work/u.h5" --json | python3 -c 'import json,sys; e=[x["result"]["precision"] for x in json.load(sys.stdin)["evaluations"]]; assert e == ["float32"], e' || fail "W4: a stale record is shown"
# W5: no changed answer in one image is no certainty.
"$precis" eval "$work/u.h5" --precision float32,float64 --first 1 --json --quiet | python3 -c 'import json,sys; c=json.load(sys.stdin)["results"][1]["vs_float32"]; assert c["differs"] == 0 and c["ci95_low_pp"] < -90 and c["ci95_high_pp"] > 90, c' || fail "W5"
# L1, L3, L5, K16: outputs that cannot be written are refused before any work.
mkdir "$work/adir"
usage_error "--output $work/adir: is a folder, not a file" "$precis" train --epochs 1 --output "$work/adir" --force
usage_error "--output : is an empty name" "$precis" train --epochs 1 --output ""
usage_error "is not a regular file" "$precis" train --epochs 1 --output /dev/null --force
[ -c /dev/null ] || fail "L3: /dev/null is no longer a device"
mkfifo "$work/fifo"
usage_error "is not a regular file" "$precis" train --epochs 1 --output "$work/fifo" --force
usage_error "--checkpoint and --output name the same file" "$precis" train --epochs 1 --checkpoint "$work/x.h5" --output "$work/x.h5"
usage_error "give --output FILE to keep the trained weights, or --no-output" "$precis" train --epochs 1
# L2: one overwrite rule for every output.
cp "$work/u.h5" "$work/exists"
before=$(snapshot "$work/exists")
usage_error "exists (use --force" "$precis" train --epochs 1 --checkpoint "$work/exists" --output "$work/new.h5"
usage_error "exists (use --force" "$precis" export "$work/u.h5" --onnx "$work/exists"
usage_error "exists (use --force" "$precis" formats --encode e4m3 --input "$work/exists" --output "$work/exists"
usage_error "exists (use --force" "$precis" import "$work/book.npz" --model simple --dataset mnist5k --output "$work/exists"
cp "$work/exists" "$work/p-float32.f64"
usage_error "exists (use --force" "$precis" eval "$work/u.h5" --precision float32 --limit 20 --save-logits "$work/p" --quiet
cmp -s "$work/exists" "$work/p-float32.f64" || fail "L2: --save-logits replaced a file"
[ "$(snapshot "$work/exists")" = "$before" ] || fail "L2: an output was replaced without --force"
"$precis" formats --encode e4m3 --input "$work/v.f32" --output "$work/v.f32" --force
[ "$(stat -c %s "$work/v.f32")" = 4 ] || fail "L2: formats --force with its own input"
# L4: edits in place keep mode and owner, refuse a read-only file, and write through a link.
cp "$work/u.h5" "$work/private.h5" && chmod 600 "$work/private.h5"
"$precis" export "$work/private.h5" --precision bfloat16 > /dev/null
[ "$(stat -c %a "$work/private.h5")" = 600 ] || fail "L4: the mode of an edited file changed"
cp "$work/u.h5" "$work/ro.h5" && chmod 444 "$work/ro.h5"
before=$(snapshot "$work/ro.h5")
usage_error "is read-only" "$precis" quantize "$work/ro.h5" --scheme wchannel-au8z --calibration minmax
usage_error "is read-only" "$precis" eval "$work/ro.h5" --record --limit 20
usage_error "is read-only" "$precis" upgrade "$work/ro.h5"
[ "$(snapshot "$work/ro.h5")" = "$before" ] || fail "L4: a read-only file changed"
cp "$work/u.h5" "$work/target.h5" && ln -s target.h5 "$work/link.h5"
"$precis" export "$work/link.h5" --precision bfloat16 > /dev/null
[ -L "$work/link.h5" ] && [ "$(readlink "$work/link.h5")" = target.h5 ] || fail "L4: the link was replaced"
python3 -c 'import h5py,sys; assert "bfloat16" in h5py.File(sys.argv[1],"r")["variants"]' "$work/target.h5" || fail "L4: the link's target did not change"
# K1, K3, K4, K5, K6, K11, K12, K14: command-line mistakes are one line with the reason and exit 64.
usage_error "shift takes 1 to 8 pixels" "$precis" train --no-output --augment shift:28
usage_error "rotate takes 0 to 180 degrees" "$precis" train --no-output --augment rotate:-10
usage_error "EVERY, a whole number of epochs from 1" "$precis" train --no-output --lr-schedule step:0:0.5
usage_error "normal:STD takes a standard deviation in (0, 10\]" "$precis" train --no-output --init normal:1e300
usage_error "epochs must be from 1" "$precis" train --no-output --epochs -1
usage_error "a seed is a whole number from 0" "$precis" train --no-output --seed -1
# The per-layer search meets its limit: the budget in bits, the drop as measured; its JSON says so.
cp Weights/simple-mnist5k.h5 "$work/search.h5"
"$precis" quantize "$work/search.h5" --budget 6 --candidates int8,int4-g32,float16 --limit 200 --json --quiet \
  > "$work/search-bits.json"
"$precis" quantize "$work/search.h5" --max-drop 0.5 --candidates int8,mxfp4 --limit 200 --json --quiet > "$work/search-drop.json"
python3 - "$work" <<'PY' || fail "precision search"
import json, sys
b, d = (json.load(open(f"{sys.argv[1]}/search-{n}.json")) for n in ("bits", "drop"))
assert b["schema"] == "precis.search/1" and b["candidates"] == ["int8", "int4-g32", "float16", "float32"], b["candidates"]
o = b["outcome"]
bits = sum(a["bits"] for a in o["assignment"]) / sum(a["weights"] for a in o["assignment"])
assert abs(bits - o["bits_per_weight"]) < 1e-9 and bits <= 6, (bits, o["bits_per_weight"])
assert len(o["assignment"]) == len(b["layers"]) == 3 and len(b["alone_pp"]) == 4, b["layers"]
assert -d["outcome"]["verified"]["vs_float32"]["change_pp"] <= 0.5 and d["max_drop_pp"] == 0.5, d["outcome"]
assert (b["variant"], d["variant"]) == ("search-bits6", "search-drop0.5"), (b["variant"], d["variant"])
PY
# Each assignment is stored; eval runs the stored variant and gets the figures the search measured.
"$precis" eval "$work/search.h5" --precision search-bits6,search-drop0.5 --limit 200 --json --quiet > "$work/search-eval.json"
python3 - "$work" <<'PY' || fail "stored searched assignments"
import h5py, json, sys
rows = {r["precision"]: r for r in json.load(open(f"{sys.argv[1]}/search-eval.json"))["results"]}
with h5py.File(f"{sys.argv[1]}/search.h5", "r") as f:
    for n in ("bits", "drop"):
        s = json.load(open(f"{sys.argv[1]}/search-{n}.json"))
        o, r = s["outcome"], rows[s["variant"]]
        assert (r["accuracy"], r["vs_float32"]["differs"]) == (o["verified"]["accuracy"], o["verified"]["vs_float32"]["differs"]), n
        assert abs(r["bits_per_weight"] - o["bits_per_weight"]) < 1e-9, (r["bits_per_weight"], o["bits_per_weight"])
        stored = f["variants"][r["precision"]].attrs["assignment"].decode().split()
        assert stored == [f'{a["layer"]}={a["candidate"]}' for a in o["assignment"]], stored
PY
# format-split's weights-and-inputs row is the stored variant precis eval runs.
python3 "$(dirname "$0")/format-split.py" Weights/deep-fashion.h5 mxfp4 --limit 200 --json > "$work/split.json"
"$precis" eval Weights/deep-fashion.h5 --precision mxfp4 --first 200 --json --quiet > "$work/split-eval.json"
python3 - "$work" <<'PY' || fail "format-split"
import json, sys
s, e = (json.load(open(f"{sys.argv[1]}/{n}.json")) for n in ("split", "split-eval"))
assert s["schema"] == "precis.format-split/1" and s["images"] == 200, s
assert abs(s["rows"]["both"]["accuracy"] - e["results"][0]["accuracy"]) <= 0.01, (s["rows"], e["results"][0]["accuracy"])
assert s["rows"]["float32"]["change_pp"] == 0 and set(s["rows"]) == {"float32", "weights", "inputs", "both"}, s["rows"]
PY
# numpy runs each stored assignment layer by layer in its own format and must give precis eval's answers.
python3 "$(dirname "$0")/crosscheck.py" "$work/search.h5" --precis "$precis" --format-images 500 > "$work/search-cross.json" \
  || fail "crosscheck of the searched variants"
usage_error "give --budget BITS or --max-drop POINTS" "$precis" quantize "$work/u.h5" --candidates int8
usage_error "give --budget BITS or --max-drop POINTS" "$precis" quantize "$work/u.h5" --budget 5 --max-drop 1
usage_error "--candidates: unknown format 'int9'" "$precis" quantize "$work/u.h5" --budget 5 --candidates int8,int9
usage_error "more than 0 and at most 32" "$precis" quantize "$work/u.h5" --budget 0
usage_error "no --compare, --format" "$precis" quantize "$work/u.h5" --budget 5 --format mxfp4
expect_error "no assignment of the candidates fits in 1.00 bits" "$precis" quantize "$work/u.h5" --budget 1 --limit 50 --quiet
usage_error "applies to the int4 formats only" "$precis" quantize "$work/u.h5" --format mxfp4 --calibration mse
usage_error "00_conv1: a convolution needs 1...65536 filters" "$precis" train --no-output --model "conv(0,5) relu affine(10)"
usage_error "00_maxpool1: maxpool(0,stride=0,pad=0) needs size 1" "$precis" train --no-output --model "maxpool(0) affine(10)"
usage_error "unknown data set 'cifar10'" "$precis" train --no-output --dataset cifar10
usage_error "--qat-warmup and --learn-scales go with --qat" "$precis" train --no-output --qat-warmup 5
usage_error "--qat-warmup and --learn-scales go with --qat" "$precis" train --no-output --learn-scales
usage_error "mxfp4 takes its scales from the values" "$precis" train --no-output --from "$work/u.h5" --qat mxfp4 \
  --learn-scales
usage_error "--seed draws the --limit sample" "$precis" eval "$work/u.h5" --seed 3
usage_error "--percentile goes with --calibration percentile" "$precis" quantize "$work/u.h5" --scheme wchannel-au8z --calibration mse --percentile 99
usage_error "give the data set the network was trained for" "$precis" import "$work/book.npz" --model simple --output "$work/i.h5"
usage_error "--data /nonexistent: no such folder" "$precis" import "$work/book.npz" --model simple --data /nonexistent --output "$work/i.h5"
usage_error "unknown command 'nonexist'" "$precis" help nonexist
[ "$(wc -l < "$work/err.txt")" -eq 1 ] || fail "K14: help of an unknown command is not one line"
"$precis" help formats | grep -q '\\' && fail "K14: help formats shows backslashes"
"$precis" train --no-output --lr 0.01 --epochs 1 --quiet > /dev/null || fail "K2: --lr"
# K7, K8, K9, K10, K13, K19, K21
expect_error "adir: is a folder, not a file" "$precis" inspect "$work/adir"
usage_error "--output $work/u.h5: is a file, not a folder" "$precis" report "$work/u.h5" --output "$work/u.h5"
usage_error "is not a folder" "$precis" train --epochs 1 --output "$work/k8.h5" --report "$work/u.h5/x"
usage_error "does not exist" "$precis" report "$work/u.h5" --output "$work/missing/deeper"
"$precis" report "$work/bn.h5" --output "$work/rep" > /dev/null
[ -e "$work/rep/compare-change.svg" ] || fail "K9: the first report has no comparison chart"
usage_error "exists (use --force" "$precis" report "$work/u.h5" --output "$work/rep"
"$precis" report "$work/u.h5" --output "$work/rep" --force > /dev/null
[ ! -e "$work/rep/compare-change.svg" ] || fail "K9: the earlier report's charts were left"
ls -A "$work" | grep -q '\.lock$' && fail "K10: a lock file was left"
"$precis" eval "$work/u.h5" --explain float16 --limit 50 --quiet > "$work/k13.txt"
[ "$(wc -l < "$work/k13.txt")" -lt 30 ] || fail "K13: --explain prints the whole report first"
"$precis" inspect "$work/book.h5" | grep -q "init he" && fail "K19: an imported network says init he"
cp "$work/u.h5" "$work/nan.h5"
python3 -c 'import h5py,sys; d=h5py.File(sys.argv[1],"r+")["training/test_accuracy"]; d[-1] = float("nan")' "$work/nan.h5"
"$precis" inspect "$work/nan.h5" | grep -q "nan%" && fail "K21: inspect prints nan%"
# K17: a smaller sample does not replace a larger record unasked.
"$precis" eval "$work/u.h5" --precision float32 --record --quiet > /dev/null
expect_error "holds 1000 images, more than these 200 (use --force" "$precis" eval "$work/u.h5" --precision float32 --record --limit 200 --quiet
# K18: the ONNX model says what it takes.
"$precis" export "$work/u.h5" --onnx "$work/k18.onnx" > /dev/null
python3 -c 'import onnx,sys; m=onnx.load(sys.argv[1]); p={x.key: x.value for x in m.metadata_props}; assert "pixel / 255" in m.doc_string and p["dataset"] == "mnist5k" and p["input"].startswith("input (N, 1, 28, 28)"), p' "$work/k18.onnx" || fail "K18"
echo "cli-check: passed"
