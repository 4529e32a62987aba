#!/usr/bin/env python3
"""Opens a report page in headless Chromium as a person would, and checks what they would see.

Writes `precis report FILE` into a fresh folder (or takes a folder with --page-dir), loads its
index.html from disk in headless Chromium, and fails when the page logs anything to the console or
its screenshot is blank. Saves the screenshot next to the page (page.png) and prints its path.

    python3 Tools/page-check.py Weights/deep-fashion.h5 [--precis .build/release/precis] [--keep DIR]
"""
import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib


def png_colours(path):
    """The number of distinct pixel values in an 8-bit RGB or RGBA PNG (non-interlaced)."""
    data = open(path, 'rb').read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    pos, idat, header = 8, b'', None
    while pos < len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b'IHDR':
            header = struct.unpack('>IIBBBBB', chunk)
        elif kind == b'IDAT':
            idat += chunk
        pos += 12 + length
    width, height, depth, colour = header[0], header[1], header[2], header[3]
    assert depth == 8 and colour in (2, 6), f'unexpected PNG format (depth {depth}, colour type {colour})'
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    previous, colours = bytearray(stride), set()
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp * 7))  # every 7th pixel suffices
        previous = line
    return len(colours)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('file')
    ap.add_argument('--precis', default='.build/release/precis')
    ap.add_argument('--keep', help='write the page and its screenshot into this folder and keep them')
    a = ap.parse_args()
    browser = shutil.which('chromium') or shutil.which('chromium-browser')
    if not browser:
        print('page-check: FAIL: no chromium (Tools/setup.sh installs it)', file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.abspath(a.keep or os.path.join(tmp, 'report'))
        subprocess.run([a.precis, 'report', a.file, '--output', folder], check=True, capture_output=True)
        shot = os.path.join(folder, 'page.png')
        r = subprocess.run([browser, '--headless', '--no-sandbox', '--disable-gpu', '--enable-logging=stderr', '--v=0',
                            f'--screenshot={shot}', '--window-size=1280,2400', 'file://' + os.path.join(folder, 'index.html')],
                           capture_output=True, text=True, timeout=120, cwd=tmp)
        console = [line for line in r.stderr.splitlines() if 'CONSOLE' in line]
        failures = []
        if r.returncode != 0:
            failures.append(f'chromium exited {r.returncode}')
        if console:
            failures.append('the page logged to the console: ' + ' | '.join(console[:3]))
        if not os.path.exists(shot):
            failures.append('no screenshot')
        else:
            colours = png_colours(shot)
            if colours < 8:
                failures.append(f'the screenshot is blank ({colours} colours)')
        for f in failures:
            print('page-check: FAIL: ' + f, file=sys.stderr)
        if not failures:
            print(f'page-check: {a.file}: the page loads with no console message, screenshot of {colours} colours'
                  + (f' in {shot}' if a.keep else ''))
        return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
