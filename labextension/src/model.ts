// The trace payload (lvsal_nb/trace.py: Trace.to_json) and the per-step views the renderer draws.
// Pure: no DOM, no JupyterLab imports, so node's test runner can load it.
import { maxOf } from './colors';
import { TraceError, traceProblems } from './validate';

export const MIME_TYPE = 'application/vnd.lvsal.trace+json';
export const SCHEMA_VERSION = 1;

/** Half-open [start, stop) token positions, or null when the part is absent. */
export type Span = [number, number] | null;

export interface ICandidate {
  token_id?: number;
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
  marks?: IMark[]; // latest mark per step (MarkStore), when the payload carries them
}

export interface IMark {
  step: number;
  label: 'hallucinated' | 'unsure' | 'correct';
  note?: string;
}

/** Validate a MIME payload (object or JSON text); throws an Error that says what to do.
 *  Besides the schema, every field the viewer draws is checked (types, shapes, limits: validate.ts). */
export function parseTrace(data: unknown): ITrace {
  let d = data;
  if (typeof data === 'string') {
    try {
      d = JSON.parse(data) as unknown;
    } catch (e) {
      throw new Error(`not an lvsal trace: the file is not valid JSON (${(e as Error).message})`);
    }
  }
  if (d === null || typeof d !== 'object' || Array.isArray(d)) {
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
  const problems = traceProblems(d as Record<string, unknown>);
  if (problems.length) {
    throw new TraceError(problems);
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
  raw: number; // mean-over-layers saliency row value at this key (0 when the step has no row)
}

export interface IImageView {
  rows: number;
  cols: number;
  values: number[]; // rows * cols raw row values, row-major
  max: number; // max of values (this step)
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
    image = { rows, cols, values: raw, max: maxOf(raw) };
  }

  const text: IContextToken[] = [];
  for (let p = textStart(trace); p <= q && p < trace.tokens.length; p++) {
    text.push({ position: p, token: trace.tokens[p] ?? '', raw: at(p) });
  }
  return { q, image, text };
}

/** Top of the per-trace colour scales: max over every step of the saliency, of the image
 *  attention and of the text-context attention (the quantities the views colour). */
export function traceMax(trace: ITrace): { saliency: number; image: number; text: number } {
  let image = 0;
  let text = 0;
  trace.steps.forEach((_, i) => {
    const v = contextView(trace, i);
    image = Math.max(image, v.image?.max ?? 0);
    text = Math.max(text, maxOf(v.text.map(c => c.raw)));
  });
  return { saliency: maxOf(trace.steps.map(s => s.saliency)), image, text };
}

/** Latest mark per step (later entries win). */
export function marksByStep(trace: ITrace): Map<number, IMark> {
  const out = new Map<number, IMark>();
  for (const m of trace.marks ?? []) {
    out.set(m.step, m);
  }
  return out;
}

/** A candidate's display text: greedy traces record no text for candidates (token ""), so the
 *  emitted one shows the step's token and the others their token id. */
export function candidateText(c: ICandidate & { token_id?: number }, step: IStep): string {
  if (c.token !== '') {
    return JSON.stringify(c.token);
  }
  if (c.accepted) {
    return JSON.stringify(step.token);
  }
  return typeof c.token_id === 'number' ? `id ${c.token_id}` : '–';
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
