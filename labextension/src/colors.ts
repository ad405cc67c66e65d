// The one colour language of lvsal-nb (shared with the notebook viewer and the dashboard):
// saliency is Viridis (low = dark purple, high = yellow) on a fixed, stated scale; marks are
// outlines with a white halo (style/base.css). Everything else uses --jp-* theme variables.
// VIRIDIS is bokeh.palettes.Viridis256 verbatim (= lvsal_nb/palette.py SALIENCY_PALETTE);
// tests/browser/test_labextension_package.py checks that the lists are identical.

export type RGB = [number, number, number];

export const VIRIDIS: readonly string[] = [
  '#440154', '#440255', '#440357', '#450558', '#45065A', '#45085B', '#46095C', '#460B5E',
  '#460C5F', '#460E61', '#470F62', '#471163', '#471265', '#471466', '#471567', '#471669',
  '#47186A', '#48196B', '#481A6C', '#481C6E', '#481D6F', '#481E70', '#482071', '#482172',
  '#482273', '#482374', '#472575', '#472676', '#472777', '#472878', '#472A79', '#472B7A',
  '#472C7B', '#462D7C', '#462F7C', '#46307D', '#46317E', '#45327F', '#45347F', '#453580',
  '#453681', '#443781', '#443982', '#433A83', '#433B83', '#433C84', '#423D84', '#423E85',
  '#424085', '#414186', '#414286', '#404387', '#404487', '#3F4587', '#3F4788', '#3E4888',
  '#3E4989', '#3D4A89', '#3D4B89', '#3D4C89', '#3C4D8A', '#3C4E8A', '#3B508A', '#3B518A',
  '#3A528B', '#3A538B', '#39548B', '#39558B', '#38568B', '#38578C', '#37588C', '#37598C',
  '#365A8C', '#365B8C', '#355C8C', '#355D8C', '#345E8D', '#345F8D', '#33608D', '#33618D',
  '#32628D', '#32638D', '#31648D', '#31658D', '#31668D', '#30678D', '#30688D', '#2F698D',
  '#2F6A8D', '#2E6B8E', '#2E6C8E', '#2E6D8E', '#2D6E8E', '#2D6F8E', '#2C708E', '#2C718E',
  '#2C728E', '#2B738E', '#2B748E', '#2A758E', '#2A768E', '#2A778E', '#29788E', '#29798E',
  '#287A8E', '#287A8E', '#287B8E', '#277C8E', '#277D8E', '#277E8E', '#267F8E', '#26808E',
  '#26818E', '#25828E', '#25838D', '#24848D', '#24858D', '#24868D', '#23878D', '#23888D',
  '#23898D', '#22898D', '#228A8D', '#228B8D', '#218C8D', '#218D8C', '#218E8C', '#208F8C',
  '#20908C', '#20918C', '#1F928C', '#1F938B', '#1F948B', '#1F958B', '#1F968B', '#1E978A',
  '#1E988A', '#1E998A', '#1E998A', '#1E9A89', '#1E9B89', '#1E9C89', '#1E9D88', '#1E9E88',
  '#1E9F88', '#1EA087', '#1FA187', '#1FA286', '#1FA386', '#20A485', '#20A585', '#21A685',
  '#21A784', '#22A784', '#23A883', '#23A982', '#24AA82', '#25AB81', '#26AC81', '#27AD80',
  '#28AE7F', '#29AF7F', '#2AB07E', '#2BB17D', '#2CB17D', '#2EB27C', '#2FB37B', '#30B47A',
  '#32B57A', '#33B679', '#35B778', '#36B877', '#38B976', '#39B976', '#3BBA75', '#3DBB74',
  '#3EBC73', '#40BD72', '#42BE71', '#44BE70', '#45BF6F', '#47C06E', '#49C16D', '#4BC26C',
  '#4DC26B', '#4FC369', '#51C468', '#53C567', '#55C666', '#57C665', '#59C764', '#5BC862',
  '#5EC961', '#60C960', '#62CA5F', '#64CB5D', '#67CC5C', '#69CC5B', '#6BCD59', '#6DCE58',
  '#70CE56', '#72CF55', '#74D054', '#77D052', '#79D151', '#7CD24F', '#7ED24E', '#81D34C',
  '#83D34B', '#86D449', '#88D547', '#8BD546', '#8DD644', '#90D643', '#92D741', '#95D73F',
  '#97D83E', '#9AD83C', '#9DD93A', '#9FD938', '#A2DA37', '#A5DA35', '#A7DB33', '#AADB32',
  '#ADDC30', '#AFDC2E', '#B2DD2C', '#B5DD2B', '#B7DD29', '#BADE27', '#BDDE26', '#BFDF24',
  '#C2DF22', '#C5DF21', '#C7E01F', '#CAE01E', '#CDE01D', '#CFE11C', '#D2E11B', '#D4E11A',
  '#D7E219', '#DAE218', '#DCE218', '#DFE318', '#E1E318', '#E4E318', '#E7E419', '#E9E419',
  '#ECE41A', '#EEE51B', '#F1E51C', '#F3E51E', '#F6E61F', '#F8E621', '#FAE622', '#FDE724'
];

/** Mark colours (hex) by label. */
export const MARK_COLOURS: Readonly<Record<string, string>> = {
  hallucinated: '#D62728',
  unsure: '#FF7F0E',
  correct: '#2CA02C'
};

export function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(Math.max(x, 0), 1) : 0;
}

/** A fixed colour scale [0, hi] and how it was chosen, for the colour bar's label. */
export interface IScale {
  hi: number;
  kind: 'per trace' | 'per step';
}

/** max of the finite values, at least 0 (the scale's top); 0 when there are none. */
export function maxOf(values: Iterable<number | null | undefined>): number {
  let hi = 0;
  for (const v of values) {
    if (typeof v === 'number' && Number.isFinite(v) && v > hi) {
      hi = v;
    }
  }
  return hi;
}

/** Palette index (0..255) of value v on the scale [0, hi]; values outside are clamped. */
export function viridisIndex(v: number, hi: number): number {
  const t = hi > 0 ? clamp01(v / hi) : 0;
  return Math.min(Math.floor(t * 256), 255);
}

/** Viridis colour of v on [0, hi] (hex), or null for a missing value. */
export function viridis(v: number | null | undefined, hi: number): string | null {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    return null;
  }
  return VIRIDIS[viridisIndex(v, hi)]!;
}

/** Text colour readable on viridis(v, hi): white on the darker half, black on the brighter half. */
export function textOn(v: number | null | undefined, hi: number): string | null {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    return null;
  }
  return viridisIndex(v, hi) < 128 ? '#FFFFFF' : '#000000';
}

export function hexToRgb(hex: string): RGB {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** Colour bar label: "saliency, 0 – 0.41, per trace". */
export function scaleLabel(quantity: string, scale: IScale): string {
  const hi = scale.hi === 0 ? '0' : scale.hi >= 0.01 ? scale.hi.toFixed(2) : scale.hi.toPrecision(2);
  return `${quantity}, 0 – ${hi}, ${scale.kind}`;
}
