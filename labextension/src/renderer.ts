// The trace view: token strip, step scrubber, saliency curve and the current step's detail.
// Colours follow the one colour language (colors.ts): Viridis on fixed, stated scales, marks as
// outlines with a white halo. The image heatmap is one <canvas> whatever the grid size.
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Panel } from '@lumino/widgets';

import { hexToRgb, IScale, MARK_COLOURS, scaleLabel, textOn, VIRIDIS, viridis, viridisIndex } from './colors';
import { BOX, curveDomain, linePath, stepAt, xAt, yAt } from './curve';
import {
  candidateText,
  clampStep,
  contextView,
  fmt,
  imageGrid,
  IMark,
  ITrace,
  marksByStep,
  parseTrace,
  tokenText,
  traceMax
} from './model';
import { stopBokehViews, widgetFallback, WIDGET_MIME_TYPE } from './widgetfallback';

const CLASS = 'jp-LvsalTrace';
/** Rank of the trace renderer: below (preferred over) ipywidgets' widget view at -10, so an output
 *  with both is ours to route (widgetfallback.ts); text/plain and text/html rank far above. */
export const RANK = -20;
const SVG_NS = 'http://www.w3.org/2000/svg';
/** At most this many context tokens are drawn per step (the latest ones); a note says how many were left out. */
export const MAX_CONTEXT_TOKENS = 600;
const RGB = VIRIDIS.map(hexToRgb);

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  cls?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) {
    e.className = cls;
  }
  if (text !== undefined) {
    e.textContent = text;
  }
  return e;
}

function svg(tag: string, attrs: Record<string, string | number>): SVGElement {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    e.setAttribute(k, String(v));
  }
  return e;
}

/** A horizontal Viridis colour bar with its stated scale ("saliency, 0 – 0.41, per trace"). */
export function colourBar(quantity: string, scale: IScale): HTMLElement {
  const bar = el('div', `${CLASS}-colorbar`);
  const ramp = el('span', `${CLASS}-ramp`);
  const stops = Array.from({ length: 17 }, (_, k) => VIRIDIS[Math.min(k * 16, 255)]!);
  ramp.style.background = `linear-gradient(to right, ${stops.join(', ')})`;
  bar.append(ramp, el('span', `${CLASS}-scale`, scaleLabel(quantity, scale)));
  return bar;
}

/** Finds the renderer of another MIME type (the notebook's rendermime registry), if any. */
export interface IFactoryLookup {
  getFactory(mimeType: string): IRenderMime.IRendererFactory | undefined;
}

/** MIME renderer (also the document viewer of *.lvsal.json files). Given the notebook's registry,
 *  an output that also carries a widget view shows the live widget when the kernel has its model,
 *  else the saved trace (a reopened notebook: no "model not found"). */
export class TraceRenderer extends Panel implements IRenderMime.IRenderer {
  constructor(options: IRenderMime.IRendererOptions, registry?: IFactoryLookup) {
    super();
    this._options = options;
    this._mimeType = options.mimeType;
    this._registry = registry ?? null;
    this.addClass(CLASS);
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const previous = this._view?.current; // keep the selected step when an output is updated
    this._clear();
    if (this._registry && model.data[WIDGET_MIME_TYPE] && model.trusted) {
      // the kernel restarted or stopped: the widget is dead, show the saved trace instead
      const rendering = ++this._renders;
      const onDead = (): void => {
        if (!this.isDisposed && rendering === this._renders && this.node.dataset.lvsalShows === 'widget') {
          stopBokehViews(this.node);
          this._clear();
          this._showTrace(model, undefined);
        }
      };
      const live = await widgetFallback(this._registry, this._options, model, onDead);
      if (live) {
        this.node.classList.remove(CLASS);
        this.addWidget(live);
        this.node.dataset.lvsalShows = 'widget';
        return;
      }
    }
    this._showTrace(model, previous);
  }

  private _showTrace(model: IRenderMime.IMimeModel, previous: number | undefined): void {
    this.node.classList.add(CLASS);
    this.node.dataset.lvsalShows = 'trace';
    try {
      this._view = new TraceView(parseTrace(model.data[this._mimeType]), this.node);
      if (previous !== undefined) {
        this._view.select(previous);
      }
    } catch (err) {
      this.node.appendChild(el('div', `${CLASS}-error`, `Cannot show this trace: ${(err as Error).message}`));
    }
  }

  /** The interactive view, for tests and other plugins. */
  get view(): TraceView | null {
    return this._view;
  }

  private _clear(): void {
    for (const w of [...this.widgets]) {
      w.dispose();
    }
    this.node.textContent = '';
    this._view = null;
  }

  private _options: IRenderMime.IRendererOptions;
  private _mimeType: string;
  private _registry: IFactoryLookup | null;
  private _view: TraceView | null = null;
  private _renders = 0; // renderModel calls so far: a dead widget swaps only its own rendering
}

/** DOM for one trace; `select(i)` moves every part to step i (0-based, as `tr.steps`). */
export class TraceView {
  readonly trace: ITrace;

  constructor(trace: ITrace, host: HTMLElement) {
    this.trace = trace;
    this._host = host;
    const n = trace.steps.length;
    this._max = traceMax(trace);
    this._marks = marksByStep(trace);

    host.appendChild(this._header());
    this._detail = el('div');
    this._readout = el('div');
    this._scrubber = el('input');
    this._curveMarker = svg('line', {});
    this._perStep = el('input');
    if (n === 0) {
      host.appendChild(el('div', `${CLASS}-empty`, 'This trace has no generated steps.'));
      return;
    }

    const strip = el('div', `${CLASS}-strip`);
    strip.setAttribute('role', 'listbox');
    const salScale: IScale = { hi: this._max.saliency, kind: 'per trace' };
    trace.steps.forEach((s, i) => {
      const t = el('span', `${CLASS}-token`, tokenText(s.token));
      t.dataset.step = String(i);
      const bg = viridis(s.saliency, salScale.hi);
      if (bg) {
        t.style.background = bg;
        t.style.color = textOn(s.saliency, salScale.hi)!;
      } else {
        t.classList.add('jp-mod-nosal');
      }
      const mark = this._marks.get(i);
      if (mark) {
        t.classList.add(`jp-mod-mark-${mark.label}`);
        t.dataset.mark = mark.label;
      }
      t.title = `step ${i}: ${JSON.stringify(s.token)}  p=${fmt(s.prob)}  S=${fmt(s.saliency)}` +
        (s.tau !== null && s.tau !== undefined ? `  τ=${fmt(s.tau)}` : '') + `  (${s.decision})` +
        (mark ? `  marked ${mark.label}${mark.note ? ': ' + mark.note : ''}` : '');
      t.addEventListener('click', () => this.select(i));
      this._tokens.push(t);
      strip.appendChild(t);
    });
    host.appendChild(strip);
    const stripKey = el('div', `${CLASS}-legend`);
    stripKey.appendChild(colourBar('token colour: saliency S', salScale));
    if (this._marks.size) {
      for (const label of ['hallucinated', 'unsure', 'correct']) {
        const k = [...this._marks.values()].filter(m => m.label === label).length;
        if (k) {
          const key = el('span', `${CLASS}-markkey jp-mod-mark-${label}`, `${label} (${k})`);
          stripKey.appendChild(key);
        }
      }
    }
    host.appendChild(stripKey);

    const controls = el('div', `${CLASS}-controls`);
    this._scrubber = el('input', `${CLASS}-scrubber`);
    Object.assign(this._scrubber, { type: 'range', min: '0', max: String(n - 1), step: '1', value: '0' });
    this._scrubber.setAttribute('aria-label', 'decoding step');
    this._scrubber.setAttribute('data-lm-suppress-shortcuts', ''); // arrow keys move the slider, not the notebook
    this._scrubber.addEventListener('input', () => this.select(Number(this._scrubber.value)));
    this._readout = el('div', `${CLASS}-readout`);
    const toggle = el('label', `${CLASS}-toggle`);
    this._perStep = el('input', `${CLASS}-perstep`);
    this._perStep.type = 'checkbox';
    this._perStep.addEventListener('change', () => this._renderDetail(this._current));
    toggle.append(this._perStep, ' per-step scale');
    toggle.title = 'colour the attention heatmaps on [0, max of this step] instead of [0, max over the trace]';
    controls.append(this._scrubber, this._readout, toggle);
    host.appendChild(controls);

    const curve = this._curve();
    this._curveMarker = curve.marker;
    host.appendChild(curve.node);

    this._detail = el('div', `${CLASS}-detail`);
    host.appendChild(this._detail);
    this.select(0);
  }

  /** The selected step index. */
  get current(): number {
    return this._current;
  }

  select(i: number): void {
    if (this.trace.steps.length === 0) {
      return;
    }
    const j = clampStep(this.trace, i);
    const old = this._tokens[this._current];
    old?.classList.remove('jp-mod-selected');
    old?.removeAttribute('aria-selected');
    this._tokens[j]?.classList.add('jp-mod-selected');
    this._tokens[j]?.setAttribute('aria-selected', 'true');
    this._current = j;
    this._scrubber.value = String(j);
    this._host.dataset.step = String(j);
    const x = xAt(j, this.trace.steps.length);
    this._curveMarker.setAttribute('x1', String(x));
    this._curveMarker.setAttribute('x2', String(x));
    this._renderReadout(j);
    this._renderDetail(j);
  }

  private _header(): HTMLElement {
    const t = this.trace;
    const h = el('div', `${CLASS}-header`);
    const cfg = t.config ?? {};
    const decoding = typeof cfg.decoding === 'string' ? cfg.decoding : cfg.sgrs ? 'sgrs' : null;
    const facts = [
      `${t.steps.length} steps`,
      cfg.engine ? `engine ${String(cfg.engine)}` : null,
      t.layers?.length ? `layers ${t.layers.join(', ')}` : null,
      decoding ? `decoding ${decoding}` : null,
      cfg.model_id ? String(cfg.model_id) : null,
      t.marks?.length ? `${t.marks.length} marked` : null,
      t.interrupted ? 'interrupted' : null
    ].filter((x): x is string => x !== null);
    h.appendChild(el('span', `${CLASS}-title`, 'LVSAL trace'));
    h.appendChild(el('span', `${CLASS}-facts`, facts.join(' · ')));
    if (t.prompt) {
      const p = el('div', `${CLASS}-prompt`, t.prompt);
      p.title = t.prompt;
      h.appendChild(p);
    }
    return h;
  }

  private _curve(): { node: HTMLElement; marker: SVGElement } {
    const steps = this.trace.steps;
    const sal = steps.map(s => s.saliency);
    const tau = steps.map(s => (s.tau === undefined ? null : s.tau));
    const hasTau = tau.some(v => v !== null);
    const domain = curveDomain(sal, hasTau ? tau : []);
    const box = el('div', `${CLASS}-curve`);
    const root = svg('svg', {
      viewBox: `0 0 ${BOX.width} ${BOX.height}`,
      role: 'img',
      'aria-label': 'saliency per step'
    });
    root.appendChild(svg('path', { class: `${CLASS}-sal`, d: linePath(sal, domain) }));
    if (hasTau) {
      root.appendChild(svg('path', { class: `${CLASS}-tau`, d: linePath(tau, domain) }));
    }
    sal.forEach((v, i) => {
      if (v !== null) {
        const mark = this._marks.get(i);
        const dot = svg('circle', { cx: xAt(i, sal.length), cy: yAt(v, domain), r: mark ? 3.6 : 2.6 });
        dot.setAttribute('fill', viridis(v, this._max.saliency) ?? 'currentColor');
        dot.classList.add(`${CLASS}-dot`);
        if (mark) {
          dot.classList.add(`jp-mod-mark-${mark.label}`);
          dot.setAttribute('stroke', MARK_COLOURS[mark.label] ?? 'currentColor');
        }
        root.appendChild(dot);
      }
    });
    const marker = svg('line', { class: `${CLASS}-marker`, y1: 2, y2: BOX.height - 2 });
    root.appendChild(marker);
    for (const [v, y] of [
      [domain[1], 11],
      [domain[0], BOX.height - 3]
    ] as const) {
      const label = svg('text', { x: 2, y, class: `${CLASS}-axis` });
      label.textContent = fmt(v, 3);
      root.appendChild(label);
    }
    root.addEventListener('click', (e: MouseEvent) => {
      const r = root.getBoundingClientRect();
      if (r.width > 0) {
        this.select(stepAt(((e.clientX - r.left) / r.width) * BOX.width, steps.length));
      }
    });
    const legend = el('div', `${CLASS}-legend`);
    legend.appendChild(el('span', `${CLASS}-key-sal`, 'saliency S (dots: token colour)'));
    if (hasTau) {
      legend.appendChild(el('span', `${CLASS}-key-tau`, 'SGRS threshold τ'));
    }
    box.append(root, legend);
    return { node: box, marker };
  }

  private _renderReadout(i: number): void {
    const s = this.trace.steps[i]!;
    const mark = this._marks.get(i);
    this._readout.textContent = '';
    this._readout.append(
      el('span', `${CLASS}-stepno`, `step ${i} of 0–${this.trace.steps.length - 1}`),
      el('code', `${CLASS}-current`, JSON.stringify(s.token)),
      el('span', '', `p ${fmt(s.prob)}`),
      el('span', '', `S ${fmt(s.saliency)}`),
      el('span', '', `τ ${fmt(s.tau)}`),
      el('span', `${CLASS}-decision`, s.decision)
    );
    if (mark) {
      this._readout.append(this._markBadge(mark));
    }
  }

  private _markBadge(mark: IMark): HTMLElement {
    const b = el('span', `${CLASS}-markbadge jp-mod-mark-${mark.label}`, mark.label + (mark.note ? `: ${mark.note}` : ''));
    return b;
  }

  private _scale(stepMax: number, traceMax: number): IScale {
    return this._perStep.checked ? { hi: stepMax, kind: 'per step' } : { hi: traceMax, kind: 'per trace' };
  }

  /** The image and text panels are built once and updated per step (a step change only
   *  repaints the canvas, recolours the context tokens and rebuilds the small candidates table). */
  private _buildPanels(): void {
    const t = this.trace;
    const grid = t.spans.image ? imageGrid(t) : null;
    if (grid) {
      const [rows, cols] = grid;
      const panel = el('div', `${CLASS}-panel ${CLASS}-imagepanel`);
      panel.appendChild(el('div', `${CLASS}-panel-title`, 'image attention'));
      const frame = el('div', `${CLASS}-image`);
      frame.style.aspectRatio = `${cols} / ${rows}`;
      if (t.image_png) {
        const img = el('img');
        img.src = `data:image/png;base64,${t.image_png}`;
        img.alt = 'input image';
        frame.appendChild(img);
      }
      const canvas = el('canvas', `${CLASS}-heat`);
      canvas.width = cols;
      canvas.height = rows;
      frame.appendChild(canvas);
      const bar = colourBar('attention', { hi: 0, kind: 'per trace' });
      panel.append(frame, el('div', `${CLASS}-note`, `${rows}×${cols} patches`), bar);
      this._image = { panel, canvas, g: canvas.getContext('2d'), label: bar.lastElementChild as HTMLElement };
    }
    const text = el('div', `${CLASS}-panel ${CLASS}-textpanel`);
    const title = el('div', `${CLASS}-panel-title`);
    const skipped = el('div', `${CLASS}-note`);
    const flow = el('div', `${CLASS}-context`);
    const norow = el('div', `${CLASS}-note`, 'no saliency row recorded for this step');
    const bar = colourBar('attention', { hi: 0, kind: 'per trace' });
    text.append(title, skipped, flow, norow, bar);
    this._text = { panel: text, title, skipped, flow, norow, bar, label: bar.lastElementChild as HTMLElement, spans: [] };
    this._cands = el('div', `${CLASS}-panel ${CLASS}-candpanel`);
  }

  private _renderDetail(i: number): void {
    const t = this.trace;
    const s = t.steps[i]!;
    const ctx = contextView(t, i);
    if (!this._text) {
      this._buildPanels();
      this._detail.textContent = '';
      if (this._image) {
        this._detail.appendChild(this._image.panel);
      }
      this._detail.append(this._text!.panel, this._cands!);
    }

    const im = this._image;
    if (im) {
      im.panel.style.display = ctx.image ? '' : 'none';
      if (ctx.image && im.g) {
        const { rows, cols, values } = ctx.image;
        const scale = this._scale(ctx.image.max, this._max.image);
        const px = im.g.createImageData(cols, rows);
        for (let k = 0; k < rows * cols; k++) {
          const [r, gr, b] = RGB[viridisIndex(values[k] ?? 0, scale.hi)]!;
          px.data.set([r, gr, b, 255], 4 * k);
        }
        im.g.putImageData(px, 0, 0);
        im.label.textContent = scaleLabel('attention', scale);
      }
    }

    const tx = this._text!;
    tx.title.textContent = `text context → ${JSON.stringify(s.token)}`;
    tx.flow.classList.toggle('jp-mod-norow', !s.row);
    const shown = ctx.text.slice(-MAX_CONTEXT_TOKENS);
    const stepMax = shown.reduce((m, c) => Math.max(m, c.raw), 0);
    const scale = this._scale(stepMax, this._max.text);
    const hidden = ctx.text.length - shown.length;
    tx.skipped.textContent = hidden > 0 ? `${hidden} earlier context tokens not shown` : '';
    tx.skipped.style.display = hidden > 0 ? '' : 'none';
    shown.forEach((c, k) => {
      let span = tx.spans[k];
      if (!span) {
        span = el('span', `${CLASS}-ctok`);
        tx.spans.push(span);
        tx.flow.appendChild(span);
      }
      span.style.display = '';
      span.textContent = tokenText(c.token);
      span.style.background = s.row ? viridis(c.raw, scale.hi)! : '';
      span.style.color = s.row ? textOn(c.raw, scale.hi)! : '';
      span.title = `position ${c.position}: ${fmt(c.raw, 4)}`;
      span.classList.toggle('jp-mod-query', c.position === ctx.q);
    });
    for (let k = shown.length; k < tx.spans.length; k++) {
      tx.spans[k]!.style.display = 'none';
      tx.spans[k]!.classList.remove('jp-mod-query');
    }
    tx.norow.style.display = s.row ? 'none' : '';
    tx.bar.style.display = s.row ? '' : 'none';
    tx.label.textContent = scaleLabel('attention', scale);

    const cand = this._cands!;
    cand.textContent = '';
    cand.appendChild(el('div', `${CLASS}-panel-title`, `candidates (${s.decision})`));
    const cands = s.candidates ?? [];
    if (cands.length === 0) {
      cand.appendChild(el('div', `${CLASS}-note`, 'no candidates recorded'));
    } else {
      const table = el('table', `${CLASS}-cands`);
      const head = table.createTHead().insertRow();
      for (const h of ['draw', 'token', 'p', 'S', '']) {
        head.appendChild(el('th', '', h));
      }
      const body = table.createTBody();
      const order = [...cands].sort((a, b) => (a.round ?? 1e9) - (b.round ?? 1e9) || b.prob - a.prob);
      for (const c of order) {
        const r = body.insertRow();
        const status = c.accepted ? 'accepted' : c.round !== null && c.round !== undefined ? 'rejected' : 'not drawn';
        r.className = `jp-mod-${status.replace(' ', '')}`;
        const label = c.accepted && s.decision === 'fallback' ? 'fallback (max S)' : status;
        const below = s.tau !== null && s.tau !== undefined && c.saliency !== null && c.saliency < s.tau;
        for (const v of [
          c.round === null || c.round === undefined ? '–' : String(c.round), // 0-based, as SGRS records it
          candidateText(c, s),
          fmt(c.prob),
          fmt(c.saliency) + (below ? ' < τ' : ''),
          label
        ]) {
          r.appendChild(el('td', '', v));
        }
      }
      cand.appendChild(table);
    }
  }

  private _host: HTMLElement;
  private _current = 0;
  private _max: { saliency: number; image: number; text: number };
  private _marks: Map<number, IMark>;
  private _tokens: HTMLElement[] = [];
  private _scrubber: HTMLInputElement;
  private _readout: HTMLElement;
  private _curveMarker: SVGElement;
  private _perStep: HTMLInputElement;
  private _detail: HTMLElement;
  private _image: { panel: HTMLElement; canvas: HTMLCanvasElement; g: CanvasRenderingContext2D | null; label: HTMLElement } | null = null;
  private _text: {
    panel: HTMLElement; title: HTMLElement; skipped: HTMLElement; flow: HTMLElement; norow: HTMLElement;
    bar: HTMLElement; label: HTMLElement; spans: HTMLElement[];
  } | null = null;
  private _cands: HTMLElement | null = null;
}
