#!/usr/bin/env bash
# check_page.sh OUT: writes OUT/index.html (scripts/chapter_page.py), renders it in headless
# Chromium to OUT/index.png and checks that every image on the page decoded. Exit 77 (CTest:
# skipped) when Chromium is not installed (bash scripts/setup.sh browser).
set -euo pipefail
out="$(realpath "$1")"
cd "$(dirname "$0")/../.."
browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ]; then
  echo "check_page: skipped, Chromium is not installed (bash scripts/setup.sh browser)"
  exit 77
fi
/usr/bin/python3 scripts/chapter_page.py "$out"
profile="$(mktemp -d)"  # a fresh profile: nothing from earlier runs, removed at the end
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking
  --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile")
rm -f "$out/index.png"
# The screenshot, for a person to look at; then the DOM after the load event, for the check.
"$browser" "${flags[@]}" --window-size=1400,6000 --screenshot="$out/index.png" \
  "file://$out/index.html" >"$profile/screenshot.log" 2>&1 || { cat "$profile/screenshot.log"; exit 1; }
"$browser" "${flags[@]}" --dump-dom "file://$out/index.html" 2>"$profile/dom.log" >"$profile/dom.html" ||
  { cat "$profile/dom.log"; exit 1; }
[ -s "$out/index.png" ] || { echo "check_page: no screenshot written"; exit 1; }
pngs=$(find "$out" -maxdepth 1 -name '*.png' ! -name index.png | wc -l)
/usr/bin/python3 - "$profile/dom.html" "$pngs" "$out/index.png" <<'PY'
import re, sys
dom, pngs, shot = open(sys.argv[1]).read(), int(sys.argv[2]), sys.argv[3]
m = re.search(r'images loaded: (\d+) of (\d+)', dom)
if not m:
    sys.exit("check_page: the page's image check did not run (no 'images loaded' in the DOM)")
ok, total = int(m.group(1)), int(m.group(2))
print(f"check_page: {ok} of {total} images loaded; {pngs} figures in the directory")
if ok != total:
    sys.exit(f"check_page: {total - ok} images did not load")
if total < pngs:
    sys.exit(f"check_page: the page shows {total} images, the directory has {pngs} figures")
# Chromium shows a PNG cut short as far as it goes (width and height known, so it counts as
# loaded): also decode every image the page embeds, chunk by chunk, CRCs and pixel data.
import base64, struct, zlib
page = open(shot[:-4] + ".html").read()
for k, uri in enumerate(re.findall(r'src="data:image/png;base64,([^"]+)"', page)):
    png = base64.b64decode(uri)
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"check_page: image {k + 1} is not a PNG")
    pos, idat, ihdr, end = 8, b"", None, False
    while pos + 8 <= len(png):
        n, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body, crc = png[pos + 8:pos + 8 + n], png[pos + 8 + n:pos + 12 + n]
        if len(crc) != 4 or zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            sys.exit(f"check_page: image {k + 1}: chunk {kind!r} at byte {pos} is cut short or corrupt")
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBB", body[:10])
        idat += body if kind == b"IDAT" else b""
        end = end or kind == b"IEND"
        pos += 12 + n
    if not end or ihdr is None:
        sys.exit(f"check_page: image {k + 1} has no IHDR or IEND chunk")
    w, h, depth, colour = ihdr
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    if len(zlib.decompress(idat)) != h * (1 + (w * channels * depth + 7) // 8):
        sys.exit(f"check_page: image {k + 1}: its pixel data does not fill {w} x {h}")
print(f"check_page: every embedded PNG decodes ({k + 1} images)")
with open(shot, "rb") as f:
    if f.read(8) != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"check_page: {shot} is not a PNG")
print(f"check_page: screenshot {shot}")
PY
