// Geometry of the saliency-over-steps curve (an inline SVG in the renderer).

export interface IBox {
  width: number;
  height: number;
  pad: number; // inner margin on every side
}

export const BOX: IBox = { width: 640, height: 110, pad: 12 };

/** x of step i of n, spread over the inner width (a single step sits in the middle). */
export function xAt(i: number, n: number, box: IBox = BOX): number {
  const w = box.width - 2 * box.pad;
  return box.pad + (n <= 1 ? w / 2 : (w * i) / (n - 1));
}

/** y of value v in domain [lo, hi]; larger values are higher up. */
export function yAt(v: number, domain: [number, number], box: IBox = BOX): number {
  const [lo, hi] = domain;
  const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
  return box.height - box.pad - t * (box.height - 2 * box.pad);
}

/** Nearest step to an x coordinate (inverse of xAt). */
export function stepAt(x: number, n: number, box: IBox = BOX): number {
  if (n <= 1) {
    return 0;
  }
  const t = (x - box.pad) / (box.width - 2 * box.pad);
  return Math.min(Math.max(Math.round(t * (n - 1)), 0), n - 1);
}

/** Domain over several series with null gaps: padded by 8% (not below 0); [0, 1] when all are empty. */
export function curveDomain(...series: ReadonlyArray<ReadonlyArray<number | null>>): [number, number] {
  const xs = series.flat().filter((v): v is number => v !== null && Number.isFinite(v));
  if (xs.length === 0) {
    return [0, 1];
  }
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  const m = hi > lo ? (hi - lo) * 0.08 : Math.abs(hi) * 0.1 || 0.5;
  return [lo >= 0 ? Math.max(lo - m, 0) : lo - m, hi + m]; // no negative axis for scores >= 0
}

function num(x: number): string {
  return (Math.round(x * 100) / 100).toString();
}

/** SVG path through the values, one point per step; nulls break the line. */
export function linePath(
  values: ReadonlyArray<number | null>,
  domain: [number, number],
  box: IBox = BOX
): string {
  const parts: string[] = [];
  let pen = false;
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) {
      pen = false;
      return;
    }
    parts.push(`${pen ? 'L' : 'M'}${num(xAt(i, values.length, box))} ${num(yAt(v, domain, box))}`);
    pen = true;
  });
  return parts.join(' ');
}
