import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { COOL, domainOf, HEAT, heatColour, mix, normalise, rgba, saliencyColour, saliencyStroke, WARN } from '../src/colors';

test('domainOf skips null and non-finite values', () => {
  assert.deepEqual(domainOf([null, 3, 1, NaN, 2]), [1, 3]);
  assert.equal(domainOf([null, undefined]), null);
});

test('normalise is min-max with nulls kept and constants at 1', () => {
  assert.deepEqual(normalise([1, null, 3, 2]), [0, null, 1, 0.5]);
  assert.deepEqual(normalise([5, 5]), [1, 1]);
  assert.deepEqual(normalise([0, 10], [0, 5]), [0, 1]);
});

test('mix and rgba', () => {
  assert.deepEqual(mix([0, 0, 0], [10, 20, 30], 0.5), [5, 10, 15]);
  assert.deepEqual(mix([0, 0, 0], [10, 20, 30], 7), [10, 20, 30]);
  assert.equal(rgba([1, 2, 3], 0.25), 'rgba(1, 2, 3, 0.25)');
});

test('low saliency gets the strong warning colour, high the faint cool one', () => {
  assert.equal(saliencyColour(0), rgba(WARN, 0.8));
  assert.equal(saliencyColour(0.5), rgba(COOL, 0.12));
  assert.equal(saliencyColour(1), rgba(COOL, 0.42));
  assert.equal(saliencyColour(null), null);
  assert.equal(saliencyStroke(0.1), rgba(WARN, 1));
});

test('heatColour is transparent at zero and grows with the value', () => {
  assert.equal(heatColour(0), rgba(HEAT, 0));
  assert.equal(heatColour(1), rgba(HEAT, 0.85));
  assert.equal(heatColour(0.5), rgba(HEAT, 0.425));
  assert.equal(heatColour(0.5, 0.6), rgba(HEAT, 0.3));
});
