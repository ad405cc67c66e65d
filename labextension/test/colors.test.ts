import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { hexToRgb, maxOf, scaleLabel, textOn, VIRIDIS, viridis, viridisIndex } from '../src/colors';

test('Viridis has 256 steps from dark purple to yellow', () => {
  assert.equal(VIRIDIS.length, 256);
  assert.equal(VIRIDIS[0], '#440154');
  assert.equal(VIRIDIS[255], '#FDE724'); // bokeh.palettes.Viridis256 (matplotlib rounds it to #FDE725)
  const lum = (h: string): number => hexToRgb(h).reduce((a, b) => a + b, 0);
  assert.ok(lum(VIRIDIS[0]!) < lum(VIRIDIS[128]!) && lum(VIRIDIS[128]!) < lum(VIRIDIS[255]!)); // low = dark
});

test('viridisIndex maps [0, hi] onto 256 bins, clamped', () => {
  assert.deepEqual([0, 0.5, 0.999, 1, 2, -1].map(v => viridisIndex(v, 1)), [0, 128, 255, 255, 255, 0]);
  assert.equal(viridisIndex(0.41, 0.41), 255);
  assert.equal(viridisIndex(1 / 256, 1), 1);
  assert.equal(viridisIndex(3, 0), 0); // empty scale: everything at the bottom
});

test('viridis and textOn: white text on the dark half, black on the bright half', () => {
  assert.equal(viridis(0, 1), '#440154');
  assert.equal(viridis(1, 1), '#FDE724');
  assert.equal(viridis(null, 1), null);
  assert.equal(viridis(NaN, 1), null);
  assert.equal(textOn(0.49, 1), '#FFFFFF');
  assert.equal(textOn(0.5, 1), '#000000');
  assert.equal(textOn(null, 1), null);
});

test('maxOf is the top of a [0, max] scale', () => {
  assert.equal(maxOf([0.1, null, 0.41, NaN, -3]), 0.41);
  assert.equal(maxOf([]), 0);
  assert.equal(maxOf([-1]), 0);
});

test('scaleLabel states quantity, range and kind', () => {
  assert.equal(scaleLabel('saliency', { hi: 0.4123, kind: 'per trace' }), 'saliency, 0 – 0.41, per trace');
  assert.equal(scaleLabel('attention', { hi: 0.00123, kind: 'per step' }), 'attention, 0 – 0.0012, per step');
  assert.equal(scaleLabel('attention', { hi: 0, kind: 'per step' }), 'attention, 0 – 0, per step');
});
