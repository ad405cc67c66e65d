// Colour scales. These are the only hard-coded colours of the extension; everything else uses
// --jp-* theme variables. Colours are translucent so text stays readable on light and dark themes.

export type RGB = [number, number, number];

export const WARN: RGB = [232, 89, 12]; // low saliency: the hallucination warning
export const COOL: RGB = [28, 126, 214]; // high saliency
export const HEAT: RGB = [174, 62, 201]; // attention mass in a saliency row

export function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(Math.max(x, 0), 1) : 0;
}

/** [min, max] of the finite values, or null when there are none. */
export function domainOf(values: ReadonlyArray<number | null | undefined>): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (typeof v === 'number' && Number.isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  return lo <= hi ? [lo, hi] : null;
}

/** Min-max scale into [0, 1]; null stays null, a constant series maps to 1. */
export function normalise(
  values: ReadonlyArray<number | null>,
  domain: [number, number] | null = domainOf(values)
): (number | null)[] {
  return values.map(v => {
    if (v === null || !Number.isFinite(v) || !domain) {
      return null;
    }
    const [lo, hi] = domain;
    return hi > lo ? clamp01((v - lo) / (hi - lo)) : 1;
  });
}

export function mix(a: RGB, b: RGB, t: number): RGB {
  const u = clamp01(t);
  return [0, 1, 2].map(k => Math.round(a[k]! + (b[k]! - a[k]!) * u)) as RGB;
}

export function rgba(c: RGB, alpha: number): string {
  return `rgba(${c[0]}, ${c[1]}, ${c[2]}, ${+clamp01(alpha).toFixed(3)})`;
}

/** Token background for a normalised saliency t: diverging through transparent at 0.5,
 *  strong warning colour towards 0 (saliency drop), faint cool colour towards 1. */
export function saliencyColour(t: number | null): string | null {
  if (t === null) {
    return null;
  }
  const u = clamp01(t);
  return u < 0.5 ? rgba(WARN, 0.12 + 0.68 * (1 - 2 * u)) : rgba(COOL, 0.12 + 0.3 * (2 * u - 1));
}

/** Opaque version of a saliency colour (curve dots). */
export function saliencyStroke(t: number | null): string | null {
  if (t === null) {
    return null;
  }
  return rgba(clamp01(t) < 0.5 ? WARN : COOL, 1);
}

/** Background for a normalised attention value v: transparent at 0, `max` opacity at 1. */
export function heatColour(v: number, max = 0.85): string {
  return rgba(HEAT, max * clamp01(v));
}
