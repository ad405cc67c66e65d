// The trace payload (lvsal_nb/trace.py: Trace.to_json) and the per-step views the renderer draws.
// Pure: no DOM, no JupyterLab imports, so node's test runner can load it.

export const MIME_TYPE = 'application/vnd.lvsal.trace+json';
export const SCHEMA_VERSION = 1;

/** Half-open [start, stop) token positions, or null when the part is absent. */
export type Span = [number, number] | null;

export interface ICandidate {
  token: string;
  prob: number;
  saliency: number | null;
  round: number | null; // SGRS draw index; null = never drawn
  accepted: boolean;
}

export interface IStep {
  step: number;
  position: number; // query row q; the token sits at q + 1
  token: string;
  prob: number;
  logprob: number;
  saliency: number | null;
  layer_scores: number[] | null;
  row: number[][] | null; // [layers][q + 1]
  tau: number | null;
  decision: string;
  round: number | null;
  candidates: ICandidate[];
}

export interface ITrace {
  schema: string;
  schema_version: number;
  trace_id: string;
  created: string;
  prompt: string;
  config: Record<string, unknown>;
  spans: { system: Span; image: Span; prompt: Span; output: Span };
  tokens: string[];
  token_ids: number[];
  image_grid: [number, number] | null;
  image_png: string | null;
  layers: number[];
  steps: IStep[];
  interrupted?: boolean;
}

/** Validate a MIME payload (object or JSON text); throws an Error that says what to do. */
export function parseTrace(data: unknown): ITrace {
  const d = typeof data === 'string' ? (JSON.parse(data) as unknown) : data;
  if (d === null || typeof d !== 'object') {
    throw new Error('not an lvsal trace: expected a JSON object from Trace.to_json()');
  }
  const t = d as Partial<ITrace>;
  if (t.schema !== 'lvsal.trace') {
    throw new Error("not an lvsal trace (missing schema 'lvsal.trace')");
  }
  const v = t.schema_version;
  if (typeof v !== 'number' || v > SCHEMA_VERSION) {
    throw new Error(
      `trace schema version ${String(v)} is newer than this viewer reads (${SCHEMA_VERSION}); ` +
        'upgrade lvsal-nb (pip install -U lvsal-nb)'
    );
  }
  if (!Array.isArray(t.steps) || !Array.isArray(t.tokens) || !t.spans) {
    throw new Error('lvsal trace is missing steps, tokens or spans; re-export it with Trace.save');
  }
  return t as ITrace;
}

/** Mean over target layers of a step's saliency row, or null when the step has none. */
export function meanRow(row: number[][] | null): number[] | null {
  if (!row || row.length === 0) {
    return null;
  }
  const n = Math.max(...row.map(r => r.length));
  const out = new Array<number>(n).fill(0);
  for (const r of row) {
    r.forEach((x, k) => (out[k] = (out[k] ?? 0) + x / row.length));
  }
  return out;
}

/** First text position of the context J ("text" context: after the image, else the prompt). */
export function textStart(trace: ITrace): number {
  const s = trace.spans;
  return s.image ? s.image[1] : s.prompt ? s.prompt[0] : 0;
}

export interface IContextToken {
  position: number;
  token: string;
  raw: number;
  value: number; // raw / max over the shown text tokens, in [0, 1]
}

export interface IImageView {
  rows: number;
  cols: number;
  values: number[]; // rows * cols, row-major, each raw / max over the image, in [0, 1]
  max: number;
}

export interface IContextView {
  q: number;
  image: IImageView | null;
  text: IContextToken[];
}

/** Grid of the image span: the recorded one, else the most square factorisation. */
export function imageGrid(trace: ITrace): [number, number] | null {
  const span = trace.spans.image;
  if (!span) {
    return null;
  }
  if (trace.image_grid && trace.image_grid.length === 2) {
    return trace.image_grid;
  }
  const n = span[1] - span[0];
  let r = Math.floor(Math.sqrt(n));
  while (r > 1 && n % r !== 0) {
    r--;
  }
  return [Math.max(r, 1), Math.max(Math.ceil(n / Math.max(r, 1)), 1)];
}

function byMax(xs: number[]): { values: number[]; max: number } {
  const max = xs.reduce((m, x) => Math.max(m, x), 0);
  return { values: xs.map(x => (max > 0 ? x / max : 0)), max };
}

/** What step `i` attended to: its mean row split into the image grid and the text context. */
export function contextView(trace: ITrace, i: number): IContextView {
  const step = trace.steps[i];
  if (!step) {
    throw new RangeError(`step ${i} out of range 0..${trace.steps.length - 1}`);
  }
  const q = step.position;
  const row = meanRow(step.row);
  const at = (k: number): number => (row && k < row.length ? Math.max(row[k] ?? 0, 0) : 0);

  let image: IImageView | null = null;
  const span = trace.spans.image;
  const grid = imageGrid(trace);
  if (span && grid && row) {
    const [rows, cols] = grid;
    const raw: number[] = [];
    for (let k = 0; k < rows * cols; k++) {
      const pos = span[0] + k;
      raw.push(pos < span[1] && pos <= q ? at(pos) : 0);
    }
    const { values, max } = byMax(raw);
    image = { rows, cols, values, max };
  }

  const positions: number[] = [];
  for (let p = textStart(trace); p <= q && p < trace.tokens.length; p++) {
    positions.push(p);
  }
  const { values } = byMax(positions.map(at));
  const text = positions.map((p, k) => ({
    position: p,
    token: trace.tokens[p] ?? '',
    raw: at(p),
    value: row ? values[k] ?? 0 : 0
  }));
  return { q, image, text };
}

/** Clamp a step index into the trace (0 for an empty trace). */
export function clampStep(trace: ITrace, i: number): number {
  const n = trace.steps.length;
  return n === 0 ? 0 : Math.min(Math.max(Math.round(i), 0), n - 1);
}

/** Short, readable display text for a token piece (whitespace made visible). */
export function tokenText(token: string): string {
  if (token === '') {
    return '∅';
  }
  return token.replace(/\n/g, '↵').replace(/\t/g, '⇥');
}

/** Format a number for the UI; '–' for null. */
export function fmt(x: number | null | undefined, digits = 3): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}
