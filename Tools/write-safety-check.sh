#!/usr/bin/env bash
# Checks that Precis never loses work or leaves half-written files: concurrent writers of one file,
# writes interrupted by SIGINT, a full disk, a read-only folder, and output paths checked before
# training. Usage: Tools/write-safety-check.sh [path/to/precis]. The full-disk and read-only cases
# mount small tmpfs folders, which needs root; without it they are reported as skipped.
set -euo pipefail
precis="$(realpath "${1:-.build/release/precis}")"
weights="$(realpath Weights)"
work=$(mktemp -d)
mounted=()
cleanup() { for m in "${mounted[@]}"; do umount "$m" 2> /dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
fail() { echo "write-safety-check: FAIL: $*" >&2; exit 1; }
no_temp_files() { ! ls -A "$1" | grep -q '\.part$' || fail "a temporary file was left in $1: $(ls -A "$1")"; }
records() { "$precis" inspect "$1" --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["evaluations"]))'; }

# A training run killed with SIGKILL mid-epoch and resumed from its checkpoint ends with exactly the
# weights (and losses) of the run that was not killed: DeepConvNet on mnist5k, dropout, Adam,
# augmentation.
"$precis" train --model deep --dataset mnist5k --epochs 3 --augment shift:1,rotate:5 --quiet --output whole.h5 > /dev/null
"$precis" train --model deep --dataset mnist5k --epochs 3 --augment shift:1,rotate:5 --quiet --checkpoint ck.h5 --no-output \
  > /dev/null 2>&1 &
pid=$!
for _ in $(seq 600); do [ -e ck.h5 ] && break; sleep 0.05; done
[ -e ck.h5 ] || fail "no checkpoint after the first epoch"
sleep 0.5
kill -9 "$pid" 2> /dev/null || fail "the training run ended before it could be killed"
wait "$pid" 2> /dev/null || true
no_temp_files .
"$precis" train --resume ck.h5 --quiet --output resumed.h5 > /dev/null
python3 - whole.h5 resumed.h5 ck.h5 <<'PY' || fail "kill and resume"
import h5py, numpy as np, sys
a, b, c = (h5py.File(p, "r") for p in sys.argv[1:])
names = []
a["model"].visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
assert names and all(np.array_equal(a["model"][n][()], b["model"][n][()]) for n in names), "weights differ"
assert np.array_equal(a["training/loss"][()], b["training/loss"][()]), "losses differ"
assert 1 <= c["checkpoint"].attrs["epochs_done"] < 3
PY

# Four writers at once, five times: every record survives.
for trial in 1 2 3 4 5; do
  cp "$weights/simple-mnist5k.h5" c.h5
  for m in float64 float32 float16 bfloat16-acc32; do
    "$precis" eval c.h5 --precision "$m" --limit 100 --record --quiet > /dev/null &
  done
  wait
  [ "$(records c.h5)" -eq 4 ] || fail "trial $trial: $(records c.h5) of 4 concurrent records survived"
done
no_temp_files .

# SIGINT at random moments of a write (an export takes about 30 ms): the file is the old one or
# the new one, never broken. At least 20 trials, until at least 3 were interrupted (at most 80).
interrupted=0 trials=0
while [ "$trials" -lt 20 ] || { [ "$interrupted" -lt 3 ] && [ "$trials" -lt 80 ]; }; do
  trials=$((trials + 1)) trial=$trials
  cp "$weights/deep-fashion.h5" k.h5
  "$precis" export k.h5 --precision float16 > /dev/null 2> err.txt &
  pid=$!
  sleep "$(printf '0.%03d' $((RANDOM % 40)))"
  kill -INT "$pid" 2> /dev/null || true
  code=0
  wait "$pid" || code=$?
  case $code in
    0) ;;
    130) interrupted=$((interrupted + 1)); grep -q "precis: interrupted" err.txt || fail "no 'interrupted' line" ;;
    *) fail "export exited $code after SIGINT" ;;
  esac
  no_temp_files .
  "$precis" eval k.h5 --precision float32 --limit 10 --quiet > /dev/null || fail "trial $trial: the file was damaged"
done
[ "$interrupted" -gt 0 ] || fail "no write was interrupted in $trials trials"

# SIGINT while a picture report is being drawn and written (a whole folder, replacing the last
# one): no temporary folder beside it, and the folder is a whole report or none.
for delay in 0.4 0.8 1.2 1.6; do
  "$precis" report "$weights/simple-mnist5k.h5" --output pictures --force > /dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -INT "$pid" 2> /dev/null || true
  wait "$pid" || true
  no_temp_files .
  [ ! -d pictures ] || [ -s pictures/index.html ] || fail "an interrupted report left a folder without its page"
done

# Output paths are checked before any training.
code=0
"$precis" train --epochs 1 --output "$work/missing/x.h5" --quiet > out.txt 2> err.txt || code=$?
[ "$code" -eq 64 ] && grep -q "missing/x.h5: its folder .* does not exist" err.txt || fail "train --output into a missing folder"

if mkdir full ro && mount -t tmpfs -o size=2m tmpfs full 2> /dev/null; then
  mounted+=("$work/full")
  # A full disk: one line naming the user's file, no temporary file, the original untouched.
  code=0
  "$precis" train --epochs 1 --output full/new.h5 --quiet > /dev/null 2> err.txt || code=$?
  [ "$code" -eq 1 ] && [ "$(wc -l < err.txt)" -eq 1 ] && grep -q "full/new.h5: could not be written completely: the disk is full" err.txt \
    || fail "train into a full disk: exit $code, $(cat err.txt)"
  [ ! -e full/new.h5 ] || fail "a full disk left a partial file"
  dd if=/dev/zero of=full/pad bs=1k count=400 2> /dev/null
  cp "$weights/simple-mnist5k.h5" full/s.h5 2> /dev/null || true
  if [ -s full/s.h5 ] && cmp -s full/s.h5 "$weights/simple-mnist5k.h5"; then
    code=0
    "$precis" export full/s.h5 --precision bfloat16 > /dev/null 2> err.txt || code=$?
    [ "$code" -eq 1 ] && [ "$(wc -l < err.txt)" -eq 1 ] || fail "export into a full disk: exit $code, $(cat err.txt)"
    cmp -s full/s.h5 "$weights/simple-mnist5k.h5" || fail "a full disk changed the original"
  fi
  no_temp_files full
  # A read-only folder: refused before the evaluation, the file untouched.
  mount -t tmpfs -o size=8m tmpfs ro && mounted+=("$work/ro")
  cp "$weights/simple-mnist5k.h5" ro/s.h5
  mount -o remount,ro ro
  code=0
  "$precis" eval ro/s.h5 --record --limit 50 --quiet > /dev/null 2> err.txt || code=$?
  [ "$code" -eq 64 ] && grep -q "ro/s.h5: its folder .* is not writable" err.txt || fail "eval --record on a read-only folder"
  code=0
  "$precis" export ro/s.h5 --precision bfloat16 > /dev/null 2> err.txt || code=$?
  [ "$code" -eq 64 ] && [ "$(wc -l < err.txt)" -eq 1 ] && grep -q "is not writable" err.txt \
    || fail "export on a read-only folder: exit $code, $(cat err.txt)"
  cmp -s ro/s.h5 "$weights/simple-mnist5k.h5" || fail "a read-only folder's file changed"
  no_temp_files ro
  echo "write-safety-check: passed ($interrupted of $trials writes interrupted; full disk and read-only folder checked)"
else
  echo "write-safety-check: passed ($interrupted of $trials writes interrupted); full disk and read-only folder skipped: mounting a tmpfs needs root"
fi
