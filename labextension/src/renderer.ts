// The trace view: token strip, step scrubber, saliency curve and the current step's detail.
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { domainOf, heatColour, normalise, saliencyColour, saliencyStroke } from './colors';
import { BOX, curveDomain, linePath, stepAt, xAt, yAt } from './curve';
import { clampStep, contextView, fmt, ITrace, parseTrace, tokenText } from './model';

const CLASS = 'jp-LvsalTrace';
const SVG_NS = 'http://www.w3.org/2000/svg';

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

/** MIME renderer (also the document viewer of *.lvsal.json files). */
export class TraceRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(options: IRenderMime.IRendererOptions) {
    super();
    this._mimeType = options.mimeType;
    this.addClass(CLASS);
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const previous = this._view?.current; // keep the selected step when an output is updated
    this.node.textContent = '';
    this._view = null;
    try {
      this._view = new TraceView(parseTrace(model.data[this._mimeType]), this.node);
      if (previous !== undefined) {
        this._view.select(previous);
      }
    } catch (err) {
      this.node.appendChild(el('div', `${CLASS}-error`, `Cannot show this trace: ${(err as Error).message}`));
    }
    return Promise.resolve();
  }

  /** The interactive view, for tests and other plugins. */
  get view(): TraceView | null {
    return this._view;
  }

  private _mimeType: string;
  private _view: TraceView | null = null;
}

/** DOM for one trace; `select(i)` moves every part to step i. */
export class TraceView {
  readonly trace: ITrace;

  constructor(trace: ITrace, host: HTMLElement) {
    this.trace = trace;
    this._host = host;
    const n = trace.steps.length;
    const sal = trace.steps.map(s => s.saliency);
    this._salNorm = normalise(sal, domainOf(sal));

    host.appendChild(this._header());
    if (n === 0) {
      host.appendChild(el('div', `${CLASS}-empty`, 'This trace has no generated steps.'));
      this._scrubber = el('input');
      this._readout = el('div');
      this._curveMarker = svg('line', {});
      this._detail = el('div');
      return;
    }

    const strip = el('div', `${CLASS}-strip`);
    strip.setAttribute('role', 'listbox');
    trace.steps.forEach((s, i) => {
      const t = el('span', `${CLASS}-token`, tokenText(s.token));
      t.dataset.step = String(i);
      const bg = saliencyColour(this._salNorm[i] ?? null);
      if (bg) {
        t.style.background = bg;
      } else {
        t.classList.add('jp-mod-nosal');
      }
      t.title = `step ${s.step}: ${JSON.stringify(s.token)}  p=${fmt(s.prob)}  S=${fmt(s.saliency)}` +
        (s.tau !== null ? `  τ=${fmt(s.tau)}` : '') + `  (${s.decision})`;
      t.addEventListener('click', () => this.select(i));
      this._tokens.push(t);
      strip.appendChild(t);
    });
    host.appendChild(strip);

    const controls = el('div', `${CLASS}-controls`);
    this._scrubber = el('input', `${CLASS}-scrubber`);
    Object.assign(this._scrubber, { type: 'range', min: '0', max: String(n - 1), step: '1', value: '0' });
    this._scrubber.setAttribute('aria-label', 'decoding step');
    this._scrubber.setAttribute('data-lm-suppress-shortcuts', ''); // arrow keys move the slider, not the notebook
    this._scrubber.addEventListener('input', () => this.select(Number(this._scrubber.value)));
    this._readout = el('div', `${CLASS}-readout`);
    controls.append(this._scrubber, this._readout);
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
    this._tokens[this._current]?.classList.remove('jp-mod-selected');
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
    const cfg = t.config;
    const decoding = typeof cfg.decoding === 'string' ? cfg.decoding : cfg.sgrs ? 'sgrs' : null;
    const facts = [
      `${t.steps.length} steps`,
      cfg.engine ? `engine ${String(cfg.engine)}` : null,
      t.layers.length ? `layers ${t.layers.join(', ')}` : null,
      decoding ? `decoding ${decoding}` : null,
      cfg.model_id ? String(cfg.model_id) : null,
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
    const tau = steps.map(s => s.tau);
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
        const dot = svg('circle', { cx: xAt(i, sal.length), cy: yAt(v, domain), r: 2.6 });
        dot.setAttribute('fill', saliencyStroke(this._salNorm[i] ?? null) ?? 'currentColor');
        dot.classList.add(`${CLASS}-dot`);
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
    legend.appendChild(el('span', `${CLASS}-key-sal`, 'saliency S'));
    if (hasTau) {
      legend.appendChild(el('span', `${CLASS}-key-tau`, 'SGRS threshold τ'));
    }
    const scale = el('span', `${CLASS}-scale`, 'token colour: low S ');
    for (const t of [0, 0.15, 0.3, 0.5, 0.7, 0.85, 1]) {
      const sw = el('span', `${CLASS}-swatch`);
      sw.style.background = saliencyColour(t) ?? '';
      scale.appendChild(sw);
    }
    scale.append(' high S (min–max over this trace)');
    legend.appendChild(scale);
    box.append(root, legend);
    return { node: box, marker };
  }

  private _renderReadout(i: number): void {
    const s = this.trace.steps[i]!;
    this._readout.textContent = '';
    this._readout.append(
      el('span', `${CLASS}-stepno`, `step ${i + 1}/${this.trace.steps.length}`),
      el('code', `${CLASS}-current`, JSON.stringify(s.token)),
      el('span', '', `p ${fmt(s.prob)}`),
      el('span', '', `S ${fmt(s.saliency)}`),
      el('span', '', `τ ${fmt(s.tau)}`),
      el('span', `${CLASS}-decision`, s.decision)
    );
  }

  private _renderDetail(i: number): void {
    const t = this.trace;
    const s = t.steps[i]!;
    const ctx = contextView(t, i);
    this._detail.textContent = '';

    if (ctx.image) {
      const panel = el('div', `${CLASS}-panel ${CLASS}-imagepanel`);
      panel.appendChild(el('div', `${CLASS}-panel-title`, 'image attention'));
      const frame = el('div', `${CLASS}-image`);
      frame.style.aspectRatio = `${ctx.image.cols} / ${ctx.image.rows}`;
      if (t.image_png && /^[A-Za-z0-9+/=\s]+$/.test(t.image_png)) {
        const img = el('img');
        img.src = `data:image/png;base64,${t.image_png}`;
        img.alt = 'input image';
        frame.appendChild(img);
      }
      const grid = el('div', `${CLASS}-grid`);
      grid.style.gridTemplateColumns = `repeat(${ctx.image.cols}, 1fr)`;
      ctx.image.values.forEach(v => {
        const c = el('div', `${CLASS}-cell`);
        c.style.background = heatColour(v, 0.7); // keep the thumbnail visible
        grid.appendChild(c);
      });
      frame.appendChild(grid);
      panel.append(frame, el('div', `${CLASS}-note`, `${ctx.image.rows}×${ctx.image.cols} patches, max ${fmt(ctx.image.max)}`));
      this._detail.appendChild(panel);
    }

    const text = el('div', `${CLASS}-panel ${CLASS}-textpanel`);
    text.appendChild(el('div', `${CLASS}-panel-title`, `text context → ${JSON.stringify(s.token)}`));
    const flow = el('div', `${CLASS}-context`);
    if (!s.row) {
      flow.classList.add('jp-mod-norow');
    }
    for (const c of ctx.text) {
      const span = el('span', `${CLASS}-ctok`, tokenText(c.token));
      span.style.background = heatColour(c.value);
      span.title = `position ${c.position}: ${fmt(c.raw, 4)}`;
      if (c.position === ctx.q) {
        span.classList.add('jp-mod-query');
      }
      flow.appendChild(span);
    }
    text.appendChild(flow);
    if (!s.row) {
      text.appendChild(el('div', `${CLASS}-note`, 'no saliency row recorded for this step'));
    }
    this._detail.appendChild(text);

    const cand = el('div', `${CLASS}-panel ${CLASS}-candpanel`);
    cand.appendChild(el('div', `${CLASS}-panel-title`, `candidates (${s.decision})`));
    if (s.candidates.length === 0) {
      cand.appendChild(el('div', `${CLASS}-note`, 'no candidates recorded'));
    } else {
      const table = el('table', `${CLASS}-cands`);
      const head = table.createTHead().insertRow();
      for (const h of ['draw', 'token', 'p', 'S', '']) {
        head.appendChild(el('th', '', h));
      }
      const body = table.createTBody();
      const order = [...s.candidates].sort((a, b) => (a.round ?? 99) - (b.round ?? 99) || b.prob - a.prob);
      for (const c of order) {
        const r = body.insertRow();
        const status = c.accepted ? 'accepted' : c.round !== null ? 'rejected' : 'not drawn';
        r.className = `jp-mod-${status.replace(' ', '')}`;
        const label = c.accepted && s.decision === 'fallback' ? 'fallback (max S)' : status;
        const below = s.tau !== null && c.saliency !== null && c.saliency < s.tau;
        for (const v of [
          c.round === null ? '–' : String(c.round + 1),
          JSON.stringify(c.token),
          fmt(c.prob),
          fmt(c.saliency) + (below ? ' < τ' : ''),
          label
        ]) {
          r.appendChild(el('td', '', v));
        }
      }
      cand.appendChild(table);
    }
    this._detail.appendChild(cand);
  }

  private _host: HTMLElement;
  private _current = 0;
  private _salNorm: (number | null)[];
  private _tokens: HTMLElement[] = [];
  private _scrubber: HTMLInputElement;
  private _readout: HTMLElement;
  private _curveMarker: SVGElement;
  private _detail: HTMLElement;
}
