// page_live.js PAGE SCREENSHOT: drives headless Chromium over the DevTools protocol (on a pipe:
// --remote-debugging-pipe, so no WebSocket library is needed) to check the chapter page in a
// real browser, 1280 px wide:
//   - the page's own self-check of the live figure (wasm vs native values) says PASS;
//   - moving the batch-size slider by script redraws the figure from the wasm kernel;
//   - the table of contents and the verdict table are on the first screen, the TOC stays in
//     view after scrolling (sticky);
//   - the printed output's sparklines are drawn in one monospace font that has the block glyphs;
//   - a screenshot of the first screen is written to SCREENSHOT.
// Run by scripts/ci/page_live.sh (CHROMIUM names the browser). Exit 1 on any failure.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const [page, shot] = process.argv.slice(2);
if (!page || !shot) { console.error('usage: node page_live.js PAGE.html SCREENSHOT.png'); process.exit(2); }
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'page-live-'));
const browser = spawn(process.env.CHROMIUM || 'chromium', [
  '--headless', '--no-sandbox', '--disable-gpu', '--remote-debugging-pipe', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--user-data-dir=' + profile, '--window-size=1280,900'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
let stderr = '';
browser.stderr.on('data', (d) => { stderr += d; });

let nextId = 1, buffered = '';
const pending = new Map();
browser.stdio[4].on('data', (chunk) => {
  buffered += chunk.toString('utf8');
  let end;
  while ((end = buffered.indexOf('\0')) >= 0) {
    const msg = JSON.parse(buffered.slice(0, end));
    buffered = buffered.slice(end + 1);
    if (msg.id && pending.has(msg.id)) {
      const { resolve, reject, method } = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) reject(new Error(method + ': ' + msg.error.message)); else resolve(msg.result);
    }
  }
});
function send(method, params = {}, sessionId) {
  const id = nextId++;
  const msg = { id, method, params };
  if (sessionId) msg.sessionId = sessionId;
  browser.stdio[3].write(JSON.stringify(msg) + '\0');
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }));
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const failures = [];
function check(ok, what) {
  console.log((ok ? '  ok   ' : '  FAIL ') + what);
  if (!ok) failures.push(what);
}

async function main() {
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  const s = (method, params) => send(method, params, sessionId);
  const evaluate = async (expr) => (await s('Runtime.evaluate', { expression: expr, returnByValue: true, awaitPromise: true })).result.value;
  await s('Emulation.setDeviceMetricsOverride', { width: 1280, height: 900, deviceScaleFactor: 1, mobile: false });
  await s('Page.enable');
  await s('Page.navigate', { url: 'file://' + path.resolve(page) });

  // The self-check runs once the wasm module has compiled.
  let result = '';
  for (let t = 0; t < 240 && !/^live self-check: (PASS|FAIL)/.test(result); t++) {
    await sleep(250);
    result = (await evaluate("(document.getElementById('live-check') || {}).textContent || ''")) || '';
  }
  console.log('page says: ' + result);
  check(/^live self-check: PASS/.test(result), 'the live figure\'s self-check (wasm vs native) passed');
  const images = await evaluate("document.getElementById('image-check').textContent");
  const m = /images loaded: (\d+) of (\d+)/.exec(images || '');
  check(m && m[1] === m[2], 'every image decoded (' + images + ')');

  // Move the batch-size slider to its right end (B = 512), as a drag would: value, then 'input'.
  const before = await evaluate("document.getElementById('live-state').textContent");
  await evaluate("(() => { const b = document.getElementById('bn-B'); b.value = b.max; b.dispatchEvent(new Event('input')); })()");
  const after = await evaluate("document.getElementById('live-state').textContent");
  console.log('before the move: ' + before + '\nafter the move:  ' + after);
  check(/B = \d+/.test(before) && !/B = 512,/.test(before), 'before the move the figure shows a batch other than 512');
  check(/^drawn: B = 512, 32768 values/.test(after), 'after the move the wasm kernel redrew it for B = 512');
  const shown = await evaluate("document.getElementById('bn-B-v').textContent");
  check(shown === '512', 'the slider\'s label says 512 (' + shown + ')');

  // The first screen at 1280 px: the TOC and the verdict table.
  await evaluate('window.scrollTo(0, 0)');
  await sleep(200);
  const layout = await evaluate(`(() => {
    const r = (q) => { const e = document.querySelector(q); if (!e) return null; const b = e.getBoundingClientRect(); return [b.left, b.top, b.width, b.height]; };
    return { toc: r('nav#toc'), tocLinks: document.querySelectorAll('nav#toc a').length, table: r('table.verdicts'),
             rows: document.querySelectorAll('table.verdicts tbody tr').length,
             width: window.innerWidth };
  })()`);
  console.log('layout: ' + JSON.stringify(layout));
  check(layout.width === 1280, 'the page is laid out 1280 px wide');
  check(layout.toc && layout.toc[1] <= 0 + 1 && layout.toc[2] > 100 && layout.tocLinks >= 3, 'the table of contents is on the first screen, with links');
  check(layout.table && layout.table[1] < 900 && layout.rows >= 1, 'the verdict table starts on the first screen (' + layout.rows + ' rows)');
  const png = Buffer.from((await s('Page.captureScreenshot', { format: 'png' })).data, 'base64');
  fs.writeFileSync(shot, png);
  check(png.readUInt32BE(16) === 1280, 'the screenshot is 1280 px wide (' + shot + ')');
  // Scrolled far down, the TOC is still in view (position: sticky).
  await evaluate('window.scrollTo(0, document.body.scrollHeight / 2)');
  await sleep(200);
  const tocTop = await evaluate("document.querySelector('nav#toc').getBoundingClientRect().top");
  check(Math.abs(tocTop) < 2, 'the table of contents stays in view when scrolled (top ' + tocTop + ')');

  // The sparklines: which fonts Chromium drew the printed output's characters with (the
  // <details> opened first: a collapsed one is not laid out).
  await evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })");
  await sleep(200);
  const { root } = await s('DOM.getDocument', { depth: -1 });
  const pres = await s('DOM.querySelectorAll', { nodeId: root.nodeId, selector: 'details pre' });
  await s('CSS.enable');
  let sparkPres = 0, fonts = new Set();
  for (const nodeId of pres.nodeIds) {
    const { outerHTML } = await s('DOM.getOuterHTML', { nodeId });
    if (!/[\u2581-\u2588]/.test(outerHTML)) continue;
    sparkPres++;
    const { fonts: used } = await s('CSS.getPlatformFontsForNode', { nodeId });
    used.forEach((f) => fonts.add(f.familyName));
  }
  if (sparkPres === 0) {
    console.log('  (no printed output with sparkline characters on this page: the font is not checked)');
  } else {
    check(fonts.size === 1 && fonts.has('DejaVu Sans Mono'),
          sparkPres + ' printed blocks with sparklines are drawn in ' + [...fonts].join(', ') + ' (expected DejaVu Sans Mono alone)');
  }
}

// Stop Chromium and wait for it to exit before removing its profile (it writes there until then).
function finish(code, message) {
  if (message) (code ? console.error : console.log)(message);
  const done = () => {
    try { fs.rmSync(profile, { recursive: true, force: true, maxRetries: 5 }); } catch (e) { /* a temp dir */ }
    process.exit(code);
  };
  if (browser.exitCode !== null || browser.signalCode !== null) return done();
  browser.once('exit', done);
  browser.kill();
  setTimeout(done, 5000);
}
const timeout = setTimeout(() => finish(1, 'page_live: timed out after 120 s'), 120000);
main().then(() => {
  clearTimeout(timeout);
  if (failures.length) finish(1, 'page_live: ' + failures.length + ' checks failed');
  else finish(0, 'page_live: all checks passed');
}, (e) => {
  clearTimeout(timeout);
  finish(1, 'page_live: ' + e.message + '\n' + stderr.slice(-2000));
});
