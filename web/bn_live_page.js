// web/bn_live_page.js — the chapter page's live BatchNorm figure (inlined into
// out/ch310/index.html by scripts/chapter_page.py, after bn_live.js, the WebAssembly build of
// web/bn_live.cpp). Every number drawn comes from tapegrad's own code in the wasm module: this
// file only moves sliders, reads the module's memory and paints canvases.
// On load it runs the self-check: the native build's results for fixed cases
// (bn_live_native.json, written by bn_live_check) against the wasm's, doubles bit for bit and
// floats within 1 ulp, and writes the outcome into #live-check (scripts/ci/page_live.sh reads it).
(function () {
  'use strict';
  var BINS = 40;
  var $ = function (id) { return document.getElementById(id); };

  function f64(m, ptr, n) { return Array.from(m.HEAPF64.subarray(ptr >> 3, (ptr >> 3) + n)); }
  function f32(m, ptr, n) { return m.HEAPF32.subarray(ptr >> 2, (ptr >> 2) + n); }
  function call(m, name, args) {
    if (m['_' + name].apply(null, args) !== 0)
      throw new Error(name + ': ' + m.UTF8ToString(m._bnl_error()));
  }

  // ---- drawing -------------------------------------------------------------------------------
  function axes(ctx, w, h, x0, x1, y1, title, xlabel) {
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, w, h);
    ctx.strokeStyle = '#444'; ctx.lineWidth = 1;
    ctx.strokeRect(48.5, 24.5, w - 60, h - 60);
    ctx.fillStyle = '#000'; ctx.font = '13px sans-serif'; ctx.textAlign = 'center';
    ctx.fillText(title, w / 2, 16);
    ctx.font = '11px sans-serif';
    for (var i = 0; i <= 4; i++) {
      var xv = x0 + (x1 - x0) * i / 4;
      ctx.fillText(xv.toPrecision(3), 48 + (w - 60) * i / 4, h - 22);
    }
    if (xlabel) ctx.fillText(xlabel, w / 2, h - 6);
    ctx.textAlign = 'right';
    for (var j = 0; j <= 2; j++) ctx.fillText((y1 * j / 2).toPrecision(2), 44, h - 36 - (h - 60) * j / 2 + 4);
  }
  function histogram(canvas, edges, density, colour, title, xlabel, note) {
    var ctx = canvas.getContext('2d'), w = canvas.width, h = canvas.height;
    var lo = edges[0], hi = edges[edges.length - 1], top = Math.max.apply(null, density) * 1.1 || 1;
    axes(ctx, w, h, lo, hi, top, title, xlabel);
    var sx = function (x) { return 48 + (w - 60) * (x - lo) / (hi - lo || 1); };
    var sy = function (y) { return h - 36 - (h - 60) * y / top; };
    ctx.fillStyle = colour; ctx.globalAlpha = 0.75;
    for (var i = 0; i < density.length; i++)
      ctx.fillRect(sx(edges[i]), sy(density[i]), Math.max(1, sx(edges[i + 1]) - sx(edges[i]) - 0.5), sy(0) - sy(density[i]));
    ctx.globalAlpha = 1; ctx.fillStyle = '#000'; ctx.textAlign = 'left'; ctx.font = '12px sans-serif';
    (note || []).forEach(function (line, k) { ctx.fillText(line, 56, 40 + 15 * k); });
  }
  function lines(canvas, series, title, xlabel, note) {
    var ctx = canvas.getContext('2d'), w = canvas.width, h = canvas.height;
    var n = 0, lo = Infinity, hi = -Infinity;
    series.forEach(function (s) { n = Math.max(n, s.y.length); s.y.forEach(function (v) { lo = Math.min(lo, v); hi = Math.max(hi, v); }); });
    lo = Math.min(lo, 0); hi = hi * 1.1 || 1;
    axes(ctx, w, h, 1, Math.max(n, 2), hi, title, xlabel);
    var sx = function (i) { return 48 + (w - 60) * i / Math.max(n - 1, 1); };
    var sy = function (y) { return h - 36 - (h - 60) * (y - lo) / (hi - lo); };
    ctx.textAlign = 'left'; ctx.font = '12px sans-serif';
    series.forEach(function (s, k) {
      ctx.strokeStyle = s.colour; ctx.fillStyle = s.colour; ctx.lineWidth = s.dots ? 1 : 2;
      ctx.beginPath();
      s.y.forEach(function (v, i) {
        if (s.dots) ctx.fillRect(sx(i) - 1.5, sy(v) - 1.5, 3, 3);
        else if (i) ctx.lineTo(sx(i), sy(v)); else ctx.moveTo(sx(i), sy(v));
      });
      if (!s.dots) ctx.stroke();
      ctx.fillText(s.label, w - 230, 40 + 15 * k);
    });
    ctx.fillStyle = '#000';
    (note || []).forEach(function (line, k) { ctx.fillText(line, 56, 40 + 15 * k); });
  }

  // ---- the controls --------------------------------------------------------------------------
  // The batch-size slider is logarithmic: 0 ... 1000 -> B = 2 ... 512.
  function batchSize() { return Math.round(2 * Math.pow(256, $('bn-B').value / 1000)); }
  function params() {
    return { B: batchSize(), mean: +$('bn-mean').value, scale: +$('bn-scale').value,
             gamma: +$('bn-gamma').value, beta: +$('bn-beta').value, seed: +$('bn-seed').value,
             momentum: +$('bn-momentum').value };
  }
  var timer = null;
  function redraw(m) {
    var p = params();
    ['B', 'mean', 'scale', 'gamma', 'beta', 'seed', 'momentum'].forEach(function (k) { $('bn-' + k + '-v').textContent = p[k]; });
    call(m, 'bnl_draw', [p.B, p.mean, p.scale, p.seed]);
    call(m, 'bnl_normalise', [p.gamma, p.beta, BINS]);
    var bins = m._bnl_bins(), F = m._bnl_features();
    var mu = f64(m, m._bnl_mean(), F), v = f64(m, m._bnl_var(), F);
    var avg = function (a) { return a.reduce(function (s, x) { return s + x; }, 0) / a.length; };
    histogram($('bn-before'), f64(m, m._bnl_x_edges(), bins + 1), f64(m, m._bnl_x_density(), bins),
              '#d62728', 'Before BN (B = ' + p.B + ', ' + p.B * F + ' values)', 'x',
              ['x ~ N(' + p.mean + ', ' + p.scale + '²)', 'μ_B of feature 0: ' + mu[0].toFixed(3)]);
    histogram($('bn-after'), f64(m, m._bnl_y_edges(), bins + 1), f64(m, m._bnl_y_density(), bins),
              '#1f77b4', 'After BN (γ = ' + p.gamma + ', β = ' + p.beta + ')', 'y',
              ['mean over features of σ²_B: ' + avg(v).toFixed(3)]);
    var draws = 200;
    call(m, 'bnl_noise', [p.B, draws, p.mean, p.scale, p.seed + 1, BINS]);
    var s = f64(m, m._bnl_noise_summary(), 4);
    histogram($('bn-noise-mu'), f64(m, m._bnl_noise_mu_edges(), BINS + 1), f64(m, m._bnl_noise_mu_density(), BINS),
              '#9467bd', 'μ_B over ' + draws + ' batches × ' + F + ' features', 'μ_B',
              ['sd(μ_B) = ' + Math.sqrt(s[1]).toFixed(4), 'σ/√B = ' + (p.scale / Math.sqrt(p.B)).toFixed(4)]);
    histogram($('bn-noise-var'), f64(m, m._bnl_noise_var_edges(), BINS + 1), f64(m, m._bnl_noise_var_density(), BINS),
              '#8c564b', 'σ²_B over the same batches', 'σ²_B',
              ['sd(σ²_B) = ' + Math.sqrt(s[3]).toFixed(4), 'σ²√(2/(B−1)) = ' + (p.scale * p.scale * Math.sqrt(2 / (p.B - 1))).toFixed(4)]);
    var steps = 100;
    call(m, 'bnl_running', [p.B, steps, p.momentum, p.mean, p.scale, p.seed + 2]);
    var smu = f64(m, m._bnl_step_mu(), steps), svar = f64(m, m._bnl_step_var_unbiased(), steps);
    var rm = Array.from(f32(m, m._bnl_running_mean(), steps)), rv = Array.from(f32(m, m._bnl_running_var(), steps));
    if (timer) clearInterval(timer);
    var t = 1;
    var frame = function () {
      lines($('bn-running'), [
        { y: smu.slice(0, t), colour: '#d62728', dots: true, label: 'μ_B of each batch (feature 0)' },
        { y: rm.slice(0, t), colour: '#d62728', label: 'running_mean' },
        { y: svar.slice(0, t), colour: '#1f77b4', dots: true, label: 'σ²_B·B/(B−1) of each batch' },
        { y: rv.slice(0, t), colour: '#1f77b4', label: 'running_var' }],
        'Running statistics, step ' + t + ' of ' + steps + ' (momentum ' + p.momentum + ')', 'step',
        ['running_mean ' + rm[t - 1].toFixed(3) + ' (true ' + p.mean + ')',
         'running_var ' + rv[t - 1].toFixed(3) + ' (true ' + (p.scale * p.scale).toFixed(3) + ')']);
      if (++t > steps) { clearInterval(timer); timer = null; }
    };
    frame();
    timer = setInterval(frame, 40);
    $('live-state').textContent = 'drawn: B = ' + p.B + ', ' + p.B * F + ' values; mu_B[0] = ' +
        mu[0] + '; sd(mu_B) = ' + Math.sqrt(s[1]) + '; running_mean[0] after ' + steps + ' steps = ' + rm[steps - 1];
  }

  // ---- the self-check ------------------------------------------------------------------------
  var bits32 = new Int32Array(1), view32 = new Float32Array(bits32.buffer);
  function ordered(x) { view32[0] = x; var i = bits32[0]; return i < 0 ? -2147483648 - i : i; }
  function ulps(a, b) { return Math.abs(ordered(a) - ordered(b)); }
  function selfCheck(m, native) {
    var doubles = 0, floats = 0, maxUlp = 0, drawsSame = 0, draws = 0, bad = [];
    function same(what, got, want) {
      for (var i = 0; i < want.length; i++) {
        doubles++;
        if (!Object.is(got[i], want[i])) { bad.push(what + '[' + i + ']: wasm ' + got[i] + ', native ' + want[i]); return; }
      }
    }
    function close(what, got, want) {
      for (var i = 0; i < want.length; i++) {
        floats++;
        var u = ulps(got[i], Math.fround(want[i]));
        maxUlp = Math.max(maxUlp, u);
        if (u > 1) { bad.push(what + '[' + i + ']: wasm ' + got[i] + ', native ' + want[i] + ' (' + u + ' ulp)'); return; }
      }
    }
    var F = native.features;
    native.forward.forEach(function (c) {
      var tag = 'B=' + c.B + ' seed ' + c.seed + ' ';
      call(m, 'bnl_draw', [c.B, c.mean, c.scale, c.seed]);
      var x = f32(m, m._bnl_x(), c.B * F);
      draws++;
      var diff = 0;
      for (var i = 0; i < x.length; i++) if (!Object.is(x[i], Math.fround(c.x[i]))) diff++;
      if (diff === 0) drawsSame++; else bad.push(tag + 'x: ' + diff + ' of ' + x.length + ' drawn values differ');
      x.set(c.x.map(Math.fround));  // the kernel alone, on the native build's x
      call(m, 'bnl_normalise', [c.gamma, c.beta, native.bins]);
      close(tag + 'y', f32(m, m._bnl_y(), c.B * F), c.y);
      same(tag + 'batch_mean', f64(m, m._bnl_mean(), F), c.batch_mean);
      same(tag + 'batch_var', f64(m, m._bnl_var(), F), c.batch_var);
      same(tag + 'invstd', f64(m, m._bnl_invstd(), F), c.invstd);
      same(tag + 'x_edges', f64(m, m._bnl_x_edges(), native.bins + 1), c.x_edges);
      same(tag + 'x_density', f64(m, m._bnl_x_density(), native.bins), c.x_density);
      same(tag + 'y_edges', f64(m, m._bnl_y_edges(), native.bins + 1), c.y_edges);
      same(tag + 'y_density', f64(m, m._bnl_y_density(), native.bins), c.y_density);
    });
    var n = native.noise;
    call(m, 'bnl_noise', [n.B, n.draws, n.mean, n.scale, n.seed, native.bins]);
    var count = m._bnl_noise_count();
    same('noise mu', f64(m, m._bnl_noise_mu(), count), n.mu);
    same('noise var', f64(m, m._bnl_noise_var(), count), n.var);
    same('noise mu_density', f64(m, m._bnl_noise_mu_density(), native.bins), n.mu_density);
    same('noise var_density', f64(m, m._bnl_noise_var_density(), native.bins), n.var_density);
    same('noise summary', f64(m, m._bnl_noise_summary(), 4), n.summary);
    var r = native.running;
    call(m, 'bnl_running', [r.B, r.steps, r.momentum, r.mean, r.scale, r.seed]);
    same('running step_mu', f64(m, m._bnl_step_mu(), r.steps), r.step_mu);
    same('running step_var', f64(m, m._bnl_step_var_unbiased(), r.steps), r.step_var);
    close('running_mean', f32(m, m._bnl_running_mean(), r.steps), r.running_mean);
    close('running_var', f32(m, m._bnl_running_var(), r.steps), r.running_var);
    return (bad.length ? 'live self-check: FAIL: ' + bad.length + ' mismatches; first: ' + bad[0]
                       : 'live self-check: PASS') +
        ' (wasm vs native: ' + doubles + ' doubles compared bit for bit, ' + floats +
        ' floats within 1 ulp, largest ' + maxUlp + ' ulp; draws identical in ' + drawsSame + ' of ' + draws + ' cases)';
  }

  window.addEventListener('load', function () {
    var check = $('live-check');
    if (typeof BnLive !== 'function') { check.textContent = 'live self-check: FAIL: no wasm module on the page'; return; }
    BnLive().then(function (m) {
      window.bnLive = m;
      try {
        check.textContent = selfCheck(m, JSON.parse($('bn-live-native').textContent));
      } catch (e) { check.textContent = 'live self-check: FAIL: ' + e.message; }
      try {
        ['B', 'mean', 'scale', 'gamma', 'beta', 'seed', 'momentum'].forEach(function (k) {
          $('bn-' + k).addEventListener('input', function () { redraw(m); });
        });
        redraw(m);
      } catch (e) { $('live-state').textContent = 'live figure: error: ' + e.message; }
    }, function (e) { check.textContent = 'live self-check: FAIL: the wasm module did not load: ' + e; });
  });
})();
