// Validation of an untrusted trace payload (a saved notebook's output or a *.lvsal.json file) before
// anything is drawn: types, shapes consistent with the arrays actually present, and size limits, so
// a small hostile or damaged payload (e.g. image_grid [1000, 1000] over a 64-patch image) cannot make
// the renderer build a million elements. Pure: no DOM.

/** Size limits of a payload the viewer draws; real traces are far below them. */
export const LIMITS = {
  steps: 10_000,
  tokens: 200_000,
  layers: 256,
  candidates: 1_000,
  gridCells: 65_536, // image patches (a 256×256 grid); drawn on one canvas
  numbers: 50_000_000, // saliency row values over all steps
  marks: 10_000
};

export const MARK_LABELS = ['hallucinated', 'unsure', 'correct'] as const;

/** A payload the viewer refuses; `problems` lists what is wrong, first few in the message. */
export class TraceError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    const shown = problems.slice(0, 4).join('; ');
    const more = problems.length > 4 ? `; and ${problems.length - 4} more` : '';
    super(`this trace payload is invalid: ${shown}${more}. Re-export it with Trace.save / display the Trace again`);
    this.problems = problems;
  }
}

type Obj = Record<string, unknown>;

function kind(x: unknown): string {
  if (x === null) {
    return 'null';
  }
  if (Array.isArray(x)) {
    return `an array of ${x.length}`;
  }
  if (typeof x === 'string') {
    return `the string ${JSON.stringify(x.length > 20 ? x.slice(0, 20) + '…' : x)}`;
  }
  if (typeof x === 'number' && !Number.isFinite(x)) {
    return String(x);
  }
  return typeof x === 'number' ? String(x) : typeof x;
}

/** Collects problems; stops collecting after `max` so a huge broken payload is not walked to the end. */
export class Checker {
  readonly problems: string[] = [];
  constructor(readonly max = 20) {}

  get full(): boolean {
    return this.problems.length >= this.max;
  }

  fail(what: string): false {
    if (!this.full) {
      this.problems.push(what);
    }
    return false;
  }

  isObject(x: unknown, name: string): x is Obj {
    return (x !== null && typeof x === 'object' && !Array.isArray(x)) || this.fail(`${name} must be an object, got ${kind(x)}`);
  }

  isArray(x: unknown, name: string, maxLen: number): x is unknown[] {
    if (!Array.isArray(x)) {
      return this.fail(`${name} must be an array, got ${kind(x)}`);
    }
    return x.length <= maxLen || this.fail(`${name} has ${x.length} entries, more than the ${maxLen} this viewer draws`);
  }

  isString(x: unknown, name: string): x is string {
    return typeof x === 'string' || this.fail(`${name} must be a string, got ${kind(x)}`);
  }

  /** An integer in [lo, hi]. */
  isInt(x: unknown, name: string, lo: number, hi: number): x is number {
    if (typeof x !== 'number' || !Number.isInteger(x)) {
      return this.fail(`${name} must be an integer, got ${kind(x)}`);
    }
    return (x >= lo && x <= hi) || this.fail(`${name} = ${x} is outside ${lo}..${hi}`);
  }

  /** A finite number (or null when `nullable`). */
  isNum(x: unknown, name: string, nullable = true): x is number | null {
    if (x === null && nullable) {
      return true;
    }
    return (typeof x === 'number' && Number.isFinite(x)) ||
      this.fail(`${name} must be a finite number${nullable ? ' or null' : ''}, got ${kind(x)}`);
  }
}

function span(c: Checker, x: unknown, name: string, nTokens: number): [number, number] | null {
  if (x === null || x === undefined) {
    return null;
  }
  if (!c.isArray(x, name, 2) || x.length !== 2) {
    c.fail(`${name} must be null or [start, stop]`);
    return null;
  }
  const [a, b] = x;
  if (c.isInt(a, `${name}[0]`, 0, nTokens) && c.isInt(b, `${name}[1]`, a, nTokens)) {
    return [a, b];
  }
  return null;
}

function checkRow(c: Checker, row: unknown, name: string, position: number): number {
  if (row === null || row === undefined) {
    return 0;
  }
  if (!c.isArray(row, name, LIMITS.layers)) {
    return 0;
  }
  let n = 0;
  for (let l = 0; l < row.length && !c.full; l++) {
    const r = row[l];
    if (!c.isArray(r, `${name}[${l}]`, LIMITS.tokens)) {
      continue;
    }
    if (r.length > position + 1) {
      c.fail(`${name}[${l}] has ${r.length} values but the step's position ${position} allows keys 0..${position} only`);
      continue;
    }
    for (let k = 0; k < r.length; k++) {
      if (typeof r[k] !== 'number' || !Number.isFinite(r[k] as number)) {
        c.isNum(r[k], `${name}[${l}][${k}]`, false);
        break;
      }
    }
    n += r.length;
  }
  return n;
}

function checkStep(c: Checker, s: unknown, i: number, nTokens: number): number {
  const name = `steps[${i}]`;
  if (!c.isObject(s, name)) {
    return 0;
  }
  c.isString(s.token, `${name}.token`);
  const posOk = c.isInt(s.position, `${name}.position`, 0, nTokens - 1);
  c.isNum(s.prob, `${name}.prob`);
  c.isNum(s.saliency, `${name}.saliency`);
  if (s.tau !== undefined) {
    c.isNum(s.tau, `${name}.tau`);
  }
  if (s.decision !== undefined) {
    c.isString(s.decision, `${name}.decision`);
  }
  if (s.layer_scores !== undefined && s.layer_scores !== null && c.isArray(s.layer_scores, `${name}.layer_scores`, LIMITS.layers)) {
    s.layer_scores.forEach((v, k) => c.isNum(v, `${name}.layer_scores[${k}]`));
  }
  const cands = s.candidates ?? [];
  if (c.isArray(cands, `${name}.candidates`, LIMITS.candidates)) {
    cands.forEach((cd, k) => {
      const cn = `${name}.candidates[${k}]`;
      if (c.isObject(cd, cn)) {
        c.isString(cd.token, `${cn}.token`);
        c.isNum(cd.prob, `${cn}.prob`);
        c.isNum(cd.saliency ?? null, `${cn}.saliency`);
        if (cd.round !== null && cd.round !== undefined) {
          c.isInt(cd.round, `${cn}.round`, 0, LIMITS.candidates);
        }
      }
    });
  }
  return posOk ? checkRow(c, s.row, `${name}.row`, s.position as number) : 0;
}

/** Every problem of a parsed payload with schema 'lvsal.trace' (empty when it can be drawn). */
export function traceProblems(t: Obj): string[] {
  const c = new Checker();
  const tokens = t.tokens;
  if (!c.isArray(tokens, 'tokens', LIMITS.tokens)) {
    return c.problems;
  }
  const bad = tokens.findIndex(x => typeof x !== 'string');
  if (bad >= 0) {
    c.isString(tokens[bad], `tokens[${bad}]`);
  }
  const n = tokens.length;
  if (t.prompt !== undefined && t.prompt !== null) {
    c.isString(t.prompt, 'prompt');
  }
  if (t.config !== undefined && t.config !== null) {
    c.isObject(t.config, 'config');
  }
  if (t.layers !== undefined && c.isArray(t.layers, 'layers', LIMITS.layers)) {
    t.layers.forEach((l, k) => c.isInt(l, `layers[${k}]`, -1_000_000, 1_000_000));
  }
  let image: [number, number] | null = null;
  if (c.isObject(t.spans, 'spans')) {
    for (const k of ['system', 'prompt', 'output']) {
      span(c, t.spans[k], `spans.${k}`, n);
    }
    image = span(c, t.spans.image, 'spans.image', n);
  }
  const grid = t.image_grid;
  if (grid !== null && grid !== undefined) {
    if (c.isArray(grid, 'image_grid', 2) && grid.length === 2 &&
      c.isInt(grid[0], 'image_grid[0]', 1, LIMITS.gridCells) && c.isInt(grid[1], 'image_grid[1]', 1, LIMITS.gridCells)) {
      const cells = grid[0] * grid[1];
      const patches = image ? image[1] - image[0] : 0;
      if (cells !== patches) {
        c.fail(`image_grid [${grid[0]}, ${grid[1]}] needs ${cells} image tokens but spans.image holds ${patches}`);
      }
    } else if (Array.isArray(grid) && grid.length !== 2) {
      c.fail('image_grid must be [rows, cols]');
    }
  }
  if (image && image[1] - image[0] > LIMITS.gridCells) {
    c.fail(`spans.image holds ${image[1] - image[0]} patches, more than the ${LIMITS.gridCells} this viewer draws`);
  }
  if (t.image_png !== null && t.image_png !== undefined && c.isString(t.image_png, 'image_png')) {
    if (!/^[A-Za-z0-9+/=\s]*$/.test(t.image_png)) {
      c.fail('image_png must be base64 PNG data');
    }
  }
  let numbers = 0;
  if (c.isArray(t.steps, 'steps', LIMITS.steps)) {
    for (let i = 0; i < t.steps.length && !c.full; i++) {
      numbers += checkStep(c, t.steps[i], i, n);
      if (numbers > LIMITS.numbers) {
        c.fail(`the saliency rows hold more than ${LIMITS.numbers} values`);
        break;
      }
    }
  }
  const marks = t.marks;
  if (marks !== undefined && marks !== null && c.isArray(marks, 'marks', LIMITS.marks)) {
    const nSteps = Array.isArray(t.steps) ? t.steps.length : 0;
    marks.forEach((m, k) => {
      if (c.isObject(m, `marks[${k}]`)) {
        c.isInt(m.step, `marks[${k}].step`, 0, Math.max(nSteps - 1, 0));
        if (!(MARK_LABELS as readonly unknown[]).includes(m.label)) {
          c.fail(`marks[${k}].label must be one of ${MARK_LABELS.join(', ')}, got ${kind(m.label)}`);
        }
        if (m.note !== undefined && m.note !== null) {
          c.isString(m.note, `marks[${k}].note`);
        }
      }
    });
  }
  return c.problems;
}
