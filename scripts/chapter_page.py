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
  - the verdict table at the top (each claim and gotcha: held / held in part / did not hold,
    one line of evidence) is computed from the programs' CSV and facts files by
    scripts/chapter_verdicts.py;
  - the live figure appears when OUT/bn_live.js (scripts/build_live.sh: web/bn_live.cpp and
    tapegrad's reference BatchNorm kernel in WebAssembly) and OUT/bn_live_native.json (the native
    build's values for its self-check, bn_live_check) are there; both are inlined.
Images are inlined as data: URIs (no network, nothing outside the file); clicking one shows it
at full size. A script at the end counts the images that decoded and writes "images loaded: N
of M" into #image-check, which scripts/ci/check_page.sh reads back from headless Chromium; the
live figure's self-check writes into #live-check (scripts/ci/page_live.sh).
"""
import base64
import html
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chapter_verdicts  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(REPO, "docs", "textbook_ch310_batchnorm.png")
LIVE_JS = os.path.join(REPO, "web", "bn_live_page.js")
HEADLINE = "ch310_batchnorm.png"
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
    """A full-width figure; a click shows it at full size (a link to the PNG beside the page
    without JavaScript)."""
    title = figure_title(out, png)
    caption = f"<b>{html.escape(png)}</b>" + (f": {html.escape(title)}" if title else "")
    img = (f'<figure><a class="zoom" href="{html.escape(png)}"><img src="'
           f'{data_uri(os.path.join(out, png))}" alt="{html.escape(png)}"></a>'
           f"<figcaption>{caption} (click for full size)</figcaption></figure>")
    if png == HEADLINE and os.path.exists(REFERENCE):
        # The textbook's figure below ours, both full width (docs/textbook_ch310_batchnorm.md:
        # provenance).
        img += (f'<figure><a class="zoom" href="{data_uri(REFERENCE)}"><img src="'
                f'{data_uri(REFERENCE)}" alt="textbook_ch310_batchnorm.png"></a>'
                "<figcaption><b>the chapter's reference figure</b> (matplotlib, from the "
                "chapter's own code; docs/textbook_ch310_batchnorm.png)</figcaption></figure>")
    return img


def duration(seconds):
    """runs.tsv's seconds as a person reads them: 0.42 s, 7.3 s, 3 min 05 s."""
    try:
        t = float(seconds)
    except ValueError:
        return seconds + " s"
    if t < 1:
        return f"{t:.2f} s"
    if t < 60:
        return f"{t:.1f} s"
    return f"{int(t // 60)} min {int(t % 60):02d} s"


def verdict_table(out, runs):
    rows = []
    for run in runs:
        prog = run["program"]
        verdict, evidence = chapter_verdicts.verdict(out, prog)
        claim = program_claim(prog)
        if claim.startswith(prog):  # "ch310_x — what it shows": the part after the name
            claim = claim[len(prog):].lstrip(" —:-")
        claim = claim.split(". ")[0].rstrip(".")
        rows.append(f'<tr class="v-{verdict.replace(" ", "-")}"><td><a href="#{html.escape(prog)}">'
                    f"{html.escape(prog)}</a></td><td>{html.escape(claim)}</td>"
                    f"<td class=\"verdict\">{html.escape(verdict)}"
                    + ("<br><small>(quick run)</small>" if "--quick" in run["command"] else "")
                    + "</td>"
                    f"<td>{html.escape(evidence)}</td></tr>")
    if not rows:
        return ""
    return ('<section id="verdicts"><h2>Verdicts: did the chapter\'s claims hold here?</h2>'
            "<p>Computed from the files the programs wrote in this directory "
            "(scripts/chapter_verdicts.py reads their CSV, facts and printed tables); a run "
            "with <code>--quick</code> gives a verdict about its few-second version. The "
            "reasoning behind each rule: docs/ch310_experiments.md and docs/ch310_gotchas.md."
            "</p><table class=\"verdicts\"><thead><tr><th>program</th><th>claim or gotcha"
            "</th><th>verdict</th><th>evidence</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></section>")


def live_section(out):
    """The live figure: sliders, canvases, the wasm module and the native values, inlined."""
    js, native = os.path.join(out, "bn_live.js"), os.path.join(out, "bn_live_native.json")
    if not (os.path.exists(js) and os.path.exists(native)):
        return ('<section id="live"><h2>Live: BatchNorm in your browser</h2><p id="live-check">'
                "live figure: not built (bash scripts/run_chapter.sh builds it with emscripten: "
                "bash scripts/setup.sh chapter)</p></section>")

    def slider(key, label, lo, hi, step, value):
        return (f'<label>{label} <input type="range" id="bn-{key}" min="{lo}" max="{hi}" '
                f'step="{step}" value="{value}"> <output id="bn-{key}-v"></output></label>')
    controls = "".join([
        slider("B", "batch size B", 0, 1000, 1, 375), slider("mean", "input mean", -10, 10, 0.5, 5),
        slider("scale", "input scale σ", 0.1, 10, 0.1, 3), slider("gamma", "γ", -3, 3, 0.1, 1),
        slider("beta", "β", -5, 5, 0.1, 0), slider("momentum", "momentum", 0.01, 1, 0.01, 0.1),
        '<label>seed <input type="number" id="bn-seed" min="0" max="1000000" value="0"> '
        '<output id="bn-seed-v"></output></label>'])
    canvases = "".join(f'<canvas id="bn-{c}" width="500" height="280"></canvas>'
                       for c in ("before", "after", "noise-mu", "noise-var"))
    return f"""<section id="live"><h2>Live: BatchNorm in your browser</h2>
<p>The chapter's figure for one batch x [B, 64] drawn from N(mean, σ²), normalised in training
mode, redrawn as you move a slider by tapegrad's own code compiled to WebAssembly with
emscripten (<code>web/bn_live.cpp</code> calling the reference kernel
<code>src/ops/kernels/reference/batch_norm.cpp</code>, <code>tg::normal</code> and
<code>tg::viz::histogram</code>; <code>scripts/build_live.sh</code>). Below it: the noise of the
batch statistics (μ_B, σ²_B of every feature over 200 batches, against σ/√B and σ²√(2/(B−1))) and
the running statistics updating step by step (PyTorch's rule, momentum as set).</p>
<p id="live-check">live self-check: not run (this figure needs JavaScript)</p>
<div class="controls">{controls}</div>
<div class="canvases">{canvases}<canvas id="bn-running" width="1010" height="320"></canvas></div>
<p id="live-state" class="small"></p>
<script type="application/json" id="bn-live-native">{read(native)}</script>
<script>{read(js)}</script>
<script>{read(LIVE_JS)}</script>
</section>"""


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
    body, shown, toc = [], set(), []
    ordered = [r for r in runs if HEADLINE in r["files"]] + [r for r in runs if HEADLINE not in r["files"]]
    for run in ordered:
        prog = run["program"]
        body.append(f'<section id="{html.escape(prog)}"><h2>{html.escape(prog)}</h2>')
        toc.append(prog)
        claim = program_claim(prog)
        if claim:
            body.append(f'<p class="claim"><b>Claim tested:</b> {html.escape(claim)}</p>')
        body.append(f"<p><b>Reproduce:</b> <code>{html.escape(run['command'])}</code> "
                    f"({html.escape(duration(run['seconds']))} here)</p>")
        figs = [f for f in run["files"] if f.endswith(".png") and f in pngs]
        for png in sorted(figs, key=lambda f: f != HEADLINE):  # the headline figure first
            body.append(figure_html(out, png))
            shown.add(png)
        printed = os.path.join(out, prog + ".txt")
        if os.path.exists(printed):
            text = ANSI.sub("", read(printed)).rstrip()
            body.append(f"<details><summary>what it printed</summary>"
                        f"<pre>{html.escape(text)}</pre></details>")
        body.append("</section>")
    rest = [p for p in pngs if p not in shown]
    if rest:
        toc.append("other-figures")
        body.append('<section id="other-figures"><h2>Other figures in this directory</h2>'
                    "<p>Written by a run not recorded in runs.tsv; each has its gnuplot "
                    "script (.gp) and CSV data beside it.</p>")
        body.extend(figure_html(out, png) for png in rest)
        body.append("</section>")
    if not pngs and not runs:
        body.append("<p>No figures yet: run <code>bash scripts/run_chapter.sh</code>.</p>")

    verdicts, live = verdict_table(out, runs), live_section(out)
    nav = ([("verdicts", "Verdicts")] if verdicts else []) + [("live", "Live figure")] + [
        (t, "Other figures" if t == "other-figures" else t) for t in toc]
    nav_html = "".join(f'<li><a href="#{html.escape(i)}">{html.escape(t)}</a></li>' for i, t in nav)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tapegrad: chapter 310, Batch Normalisation</title>
<style>
body {{ font-family: sans-serif; margin: 0; display: flex; align-items: flex-start; }}
nav#toc {{ position: sticky; top: 0; flex: 0 0 15em; max-height: 100vh; overflow-y: auto; overflow-x: hidden;
  box-sizing: border-box; padding: 1em; background: #f4f4f4; border-right: 1px solid #ccc;
  font-size: 90%; }}
nav#toc ul {{ list-style: none; padding: 0; margin: 0; }}
nav#toc li {{ margin: .3em 0; overflow-wrap: anywhere; }}
main {{ flex: 1; min-width: 0; max-width: 1600px; padding: 0 1.5em; }}
img {{ width: 100%; height: auto; border: 1px solid #ccc; cursor: zoom-in; }}
figure {{ margin: 1em 0; }}
pre, code {{ font-family: "DejaVu Sans Mono", "Noto Sans Mono", Menlo, Consolas, monospace; }}
pre {{ background: #f6f6f6; padding: .5em; overflow-x: auto; line-height: 1.2; }}
.claim {{ background: #eef6fc; padding: .5em; }}
table.verdicts {{ border-collapse: collapse; width: 100%; }}
table.verdicts td, table.verdicts th {{ border: 1px solid #ccc; padding: .3em .5em;
  text-align: left; vertical-align: top; }}
.verdict {{ font-weight: bold; white-space: nowrap; }}
.v-held .verdict {{ color: #11700f; }} .v-held-in-part .verdict {{ color: #9a6700; }}
.v-did-not-hold .verdict {{ color: #b3261e; }} .v-no-verdict .verdict {{ color: #666; }}
.controls {{ display: flex; flex-wrap: wrap; gap: .5em 1.5em; margin: .5em 0; }}
.controls output {{ display: inline-block; min-width: 3em; font-family: monospace; }}
.canvases {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr));
  gap: 6px; }}
.canvases canvas {{ width: 100%; height: auto; border: 1px solid #ddd; }}
.canvases #bn-running {{ grid-column: 1 / -1; }}
.small {{ font-size: 80%; color: #555; }}
#zoom {{ display: none; position: fixed; inset: 0; background: rgba(0,0,0,.85); overflow: auto;
  z-index: 10; cursor: zoom-out; }}
#zoom img {{ width: auto; max-width: none; cursor: zoom-out; background: #fff; }}
</style></head><body>
<nav id="toc"><b>Contents</b><ul>{nav_html}</ul></nav>
<main>
<h1>Chapter 310: Batch Normalisation, the programs' results</h1>
<p>Written by <code>scripts/chapter_page.py {html.escape(out)}</code> on
{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from the files in this directory: every
figure (PNG, drawn by gnuplot from the .gp script and CSV files beside it), what each program
printed, the claim it tests and the command that reproduces it.</p>
<p id="image-check">images: not checked (this page needs JavaScript for the check)</p>
{verdicts}
{live}
{chr(10).join(body)}
</main>
<div id="zoom"></div>
<script>
window.addEventListener('load', function () {{
  var imgs = document.querySelectorAll('main img'), ok = 0;
  for (var i = 0; i < imgs.length; i++) if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++;
  document.getElementById('image-check').textContent =
      'images loaded: ' + ok + ' of ' + imgs.length;
}});
// A click on a figure shows it at its full size; a click anywhere or Escape closes it.
var zoom = document.getElementById('zoom');
document.querySelectorAll('a.zoom').forEach(function (a) {{
  a.addEventListener('click', function (e) {{
    e.preventDefault();
    zoom.innerHTML = '';
    var img = document.createElement('img');
    img.src = a.querySelector('img').src;
    zoom.appendChild(img);
    zoom.style.display = 'block';
  }});
}});
zoom.addEventListener('click', function () {{ zoom.style.display = 'none'; }});
document.addEventListener('keydown', function (e) {{ if (e.key === 'Escape') zoom.style.display = 'none'; }});
</script>
</body></html>
"""
    # As tg::write_file_atomically writes: a new temp file (O_EXCL, unpredictable name) in the
    # same directory, flushed to disk, then renamed over index.html; removed on any failure.
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".index.html.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)  # mkstemp makes it 0600; the page gets open()'s usual mode
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, os.path.join(out, "index.html"))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    print(f"chapter_page: {os.path.join(out, 'index.html')}: {len(pngs)} figures, "
          f"{len(runs)} program runs")


if __name__ == "__main__":
    main()
