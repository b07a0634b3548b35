#!/usr/bin/python3
"""Writes OUT/index.html: one self-contained page with every figure the chapter's programs
wrote into OUT, the tables they printed, the claim each tests and the command reproducing it.

    /usr/bin/python3 scripts/chapter_page.py out/ch310

Generated from whatever is in OUT, so a new program appears without editing this script:
  - OUT/runs.tsv (written by scripts/run_chapter.sh, one line per program run:
    program <TAB> command <TAB> seconds <TAB> files it wrote, space-separated) gives each
    program's command and its figures; OUT/<program>.txt is what it printed;
  - a program's claim is the first paragraph of the comment heading examples/<program>.cpp;
  - a figure's title is the one its gnuplot script (<figure>.gp) sets;
  - figures no run claims are listed at the end.
Images are inlined as data: URIs (no network, nothing outside the file). A script at the end
counts the images that decoded and writes "images loaded: N of M" into #image-check, which
scripts/ci/chapter_page.sh reads back from headless Chromium.
"""
import base64
import html
import os
import re
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(REPO, "docs", "textbook_ch310_batchnorm.png")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\r")


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def data_uri(path):
    with open(path, "rb") as f:
        return "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")


def program_claim(program):
    """The first paragraph of the // comment that opens examples/<program>.cpp."""
    src = os.path.join(REPO, "examples", program + ".cpp")
    if not os.path.exists(src):
        return ""
    lines = []
    for line in read(src).splitlines():
        if not line.startswith("//"):
            break
        text = line[2:].strip()
        if not text:
            if lines:
                break
            continue
        lines.append(text)
    return " ".join(lines)


def figure_title(out, png):
    """The title the figure's gnuplot script gives it (multiplot title, else the first title)."""
    gp = os.path.join(out, png[:-4] + ".gp")
    if not os.path.exists(gp):
        return ""
    script = read(gp)
    m = re.search(r'set multiplot[^\n]*title "((?:[^"\\]|\\.)*)"', script) or re.search(
        r'set title "((?:[^"\\]|\\.)*)"', script)
    return m.group(1).replace('\\"', '"') if m else ""


def figure_html(out, png):
    title = figure_title(out, png)
    caption = f"<b>{html.escape(png)}</b>" + (f": {html.escape(title)}" if title else "")
    img = (f'<figure><img src="{data_uri(os.path.join(out, png))}" alt="{html.escape(png)}">'
           f"<figcaption>{caption}</figcaption></figure>")
    if png == "ch310_batchnorm.png" and os.path.exists(REFERENCE):
        # The textbook's figure beside ours (docs/textbook_ch310_batchnorm.md: provenance).
        ref = (f'<figure><img src="{data_uri(REFERENCE)}" alt="textbook_ch310_batchnorm.png">'
               "<figcaption><b>the chapter's reference figure</b> (matplotlib, from the "
               "chapter's own code; docs/textbook_ch310_batchnorm.png)</figcaption></figure>")
        return f'<div class="pair">{img}{ref}</div>'
    return img


def read_runs(out):
    runs = []
    path = os.path.join(out, "runs.tsv")
    if os.path.exists(path):
        for line in read(path).splitlines():
            parts = line.split("\t")
            if len(parts) == 4:
                runs.append({"program": parts[0], "command": parts[1], "seconds": parts[2],
                             "files": parts[3].split()})
    return runs


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: chapter_page.py OUT_DIR   (e.g. out/ch310)")
    out = sys.argv[1]
    if not os.path.isdir(out):
        sys.exit(f"chapter_page: {out} does not exist; run bash scripts/run_chapter.sh first")
    pngs = sorted(f for f in os.listdir(out) if f.endswith(".png") and f != "index.png")
    runs = read_runs(out)
    body, shown = [], set()
    for run in runs:
        prog = run["program"]
        body.append(f'<section id="{html.escape(prog)}"><h2>{html.escape(prog)}</h2>')
        claim = program_claim(prog)
        if claim:
            body.append(f'<p class="claim"><b>Claim tested:</b> {html.escape(claim)}</p>')
        body.append(f"<p><b>Reproduce:</b> <code>{html.escape(run['command'])}</code> "
                    f"({html.escape(run['seconds'])} s here)</p>")
        for png in [f for f in run["files"] if f.endswith(".png") and f in pngs]:
            body.append(figure_html(out, png))
            shown.add(png)
        printed = os.path.join(out, prog + ".txt")
        if os.path.exists(printed):
            text = ANSI.sub("", read(printed)).rstrip()
            body.append(f"<details open><summary>what it printed</summary>"
                        f"<pre>{html.escape(text)}</pre></details>")
        body.append("</section>")
    rest = [p for p in pngs if p not in shown]
    if rest:
        body.append("<section><h2>Other figures in this directory</h2>"
                    "<p>Written by a run not recorded in runs.tsv; each has its gnuplot "
                    "script (.gp) and CSV data beside it.</p>")
        body.extend(figure_html(out, png) for png in rest)
        body.append("</section>")
    if not pngs and not runs:
        body.append("<p>No figures yet: run <code>bash scripts/run_chapter.sh</code>.</p>")

    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>tapegrad: chapter 310, Batch Normalisation</title>
<style>
body {{ font-family: sans-serif; max-width: 1800px; margin: 1em auto; padding: 0 1em; }}
img {{ max-width: 100%; border: 1px solid #ccc; }}
.pair {{ display: flex; gap: 1em; }} .pair figure {{ flex: 1; }}
figure {{ margin: 1em 0; }} pre {{ background: #f6f6f6; padding: .5em; overflow-x: auto; }}
.claim {{ background: #eef6fc; padding: .5em; }}
</style></head><body>
<h1>Chapter 310: Batch Normalisation, the programs' results</h1>
<p>Written by <code>scripts/chapter_page.py {html.escape(out)}</code> on
{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from the files in this directory: every
figure (PNG, drawn by gnuplot from the .gp script and CSV files beside it), what each program
printed, the claim it tests and the command that reproduces it.</p>
<p id="image-check">images: not checked (this page needs JavaScript for the check)</p>
{chr(10).join(body)}
<script>
window.addEventListener('load', function () {{
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++;
  document.getElementById('image-check').textContent =
      'images loaded: ' + ok + ' of ' + imgs.length;
}});
</script>
</body></html>
"""
    tmp = os.path.join(out, ".index.html.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, os.path.join(out, "index.html"))
    print(f"chapter_page: {os.path.join(out, 'index.html')}: {len(pngs)} figures, "
          f"{len(runs)} program runs")


if __name__ == "__main__":
    main()
