// Browser-side scrubbing of the notebook TraceViewer (scrub.py describes the data it reads).
// The body of every CustomJS scrub.py makes; args: cursor, rows, steps, strip, image, context,
// strip_cursor, curve_cursor, context_cursor, bars, root, palette, nan_color, in_j, out_j.
// Colours and numbers follow the kernel's columns.py / row_columns.py exactly: float32 rows, the
// mean of layers as numpy computes it (float32 adds, then a float32 divide), palette index
// min(255, int(z * 256)) on [0, hi], "–" for non-finite values, 3 decimals.
const S = (function () {
  const col = (src, k) => (src.data instanceof Map ? src.data.get(k) : src.data[k]);
  const put = (src, obj) => {
    // sync: false: the kernel does not need the cursor's views (it has the rows), so nothing is
    // sent back per step
    const data = src.data instanceof Map ? new Map(Object.entries(obj)) : obj;
    src.setv({data: data}, {sync: false});
  };
  const finite = (v) => typeof v === "number" && isFinite(v);
  const fmt = (v) => (finite(v) ? v.toFixed(3) : "\u2013");
  const color = (v, hi) => {
    if (!finite(v)) return nan_color;
    if (!(hi > 0)) return palette[0];
    return palette[Math.min(255, Math.max(0, Math.floor((v / hi) * 256)))];
  };
  const g3 = (x) => String(Number(x.toPrecision(3)));  // Python's "{:.3g}" for the usual values
  const clamp = (i) => {
    // the strip's steps, not the rows': while decoding, rows may lag the tokens (scrub.py)
    const n = (col(strip, "step") || []).length;
    return Math.max(0, Math.min(Math.round(i), Math.max(n - 1, 0)));
  };

  function render() {
    const i = cursor.step;
    const qs = col(steps, "q");
    const flat0 = col(rows, "flat");
    if (!qs || i >= qs.length || !flat0 || !flat0.length) return;  // not sent yet: the kernel drew it
    const flat = flat0[0], q = qs[i], n = q + 1, off = col(steps, "offset")[i];
    const L = cursor.n_layers, lay = cursor.layer;
    if (off + L * n > flat.length) return;  // rows of another version of the trace: wait for them
    const val = lay >= 0
      ? (k) => flat[off + lay * n + k]
      : (k) => {
          let s = flat[off + k];
          for (let l = 1; l < L; l++) s = Math.fround(s + flat[off + l * n + k]);
          return Math.fround(s / L);
        };
    // cursors: the token's outline, the curve's line, the band on the context axis
    const x = col(strip, "x");
    if (x && i < x.length) {
      const c = {step: [i]};
      for (const k of ["x", "y", "w", "h"]) c[k] = [col(strip, k)[i]];
      put(strip_cursor, c);
    }
    put(curve_cursor, {x: [i]});
    const cx = col(steps, "ctx_x")[i];
    put(context_cursor, {x0: [cx - 0.5], x1: [cx + 0.5], position: [q + 1]});
    // the text part of row q: one bar per non-image position, zero past q; blue in J
    const pos = cursor.ctx_pos, j0 = col(steps, "j0")[i];
    const cv = [], ct = [], cf = [];
    for (const p of pos) {
      const v = p <= q ? val(p) : 0.0;
      cv.push(v);
      ct.push(p <= q ? fmt(v) : "\u2013");
      cf.push(p >= j0 && p <= q ? in_j : out_j);
    }
    const same = (col(context, "position") || []).length === pos.length;  // reuse the fixed columns
    put(context, {x: same ? col(context, "x") : pos.map((_, k) => k),
                  position: same ? col(context, "position") : Array.from(pos),
                  token: same ? col(context, "token") : Array.from(cursor.ctx_tokens),
                  value: cv, text: ct, fill: cf});
    // the image part on the patch grid, on the per-trace or this step's scale
    const R = cursor.grid_rows, C = cursor.grid_cols;
    if (R > 0 && C > 0) {
      const m = R * C, a = cursor.image_start, iv = new Array(m);
      let top = 0.0;
      for (let k = 0; k < m; k++) {
        iv[k] = val(a + k);
        if (finite(iv[k]) && iv[k] > top) top = iv[k];
      }
      const perStep = cursor.scale === "step";
      const hi = perStep ? top : cursor.image_top;
      const fixed = (col(image, "x") || []).length === m;  // the patch grid: reuse its columns
      const cols = {x: [], y: [], r: [], c: [], value: iv, text: [], fill: [], alpha: []};
      for (const k of ["x", "y", "r", "c", "alpha"]) if (fixed) cols[k] = col(image, k);
      for (let k = 0; k < m; k++) {
        if (!fixed) {
          const r = Math.floor(k / C), c = k % C;
          cols.x.push(c + 0.5); cols.y.push(R - r - 0.5); cols.r.push(r); cols.c.push(c); cols.alpha.push(0.75);
        }
        cols.text.push(fmt(iv[k])); cols.fill.push(color(iv[k], hi));
      }
      put(image, cols);
      const shown = hi > 0 ? hi : 1.0;
      for (const bar of bars) {
        bar.color_mapper.setv({high: shown}, {sync: false});
        bar.setv({title: "saliency, 0 \u2013 " + g3(shown) + ", per " + (perStep ? "step" : "trace")}, {sync: false});
      }
    }
  }

  // Report the shown step to the kernel once the moves pause (50 ms), at least every 250 ms.
  function report(by) {
    const st = cursor.__lvsal || (cursor.__lvsal = {timer: null, first: 0, by: "user"});
    st.by = by === "user" || st.timer === null ? by : st.by;  // a user move in the batch wins
    const now = performance.now();
    if (st.timer === null) st.first = now;
    else clearTimeout(st.timer);
    st.timer = setTimeout(() => {
      st.timer = null;
      cursor.moved_by = st.by;  // before shown: the kernel reads it when the step arrives
      cursor.shown = cursor.step;
    }, now - st.first > 250 ? 0 : 50);
  }

  function move(i, by) {
    const to = clamp(i);
    if (to !== cursor.step) cursor.setv({step: to}, {sync: false});  // redraws (js_on_change)
    report(by);
  }

  function apply_goto() {
    const g = cursor.goto;
    if (g < 0) return;
    move(g, "kernel");
    cursor.goto = -1;
  }

  function tap(sel, src) {
    const ix = sel.indices;
    if (!ix.length) return;
    const st = col(src, "step");
    sel.indices = [];  // so tapping the same glyph again is a change too
    move(st[ix[0]], "user");
  }

  function install_keys() {
    const views = (window.Bokeh && window.Bokeh.index && window.Bokeh.index.roots) || [];
    const view = views.find((v) => v.model.document === cursor.document);
    if (!view || !view.el || view.el.__lvsalKeys) return;
    const el = view.el;
    el.__lvsalKeys = true;
    el.tabIndex = 0;
    el.setAttribute("aria-label", "trace viewer: \u2190 / \u2192 move through the steps");
    el.addEventListener("pointerdown", () => el.focus({preventScroll: true}));
    el.addEventListener("keydown", (e) => {
      const n = (col(strip, "step") || []).length;
      const to = {ArrowLeft: cursor.step - 1, ArrowRight: cursor.step + 1, Home: 0, End: n - 1}[e.key];
      if (to === undefined || e.altKey || e.ctrlKey || e.metaKey) return;
      e.preventDefault();
      e.stopPropagation();
      move(to, "user");
    });
  }

  return {render, apply_goto, tap, install_keys};
})();
