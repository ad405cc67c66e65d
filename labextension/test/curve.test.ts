import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { curveDomain, IBox, linePath, stepAt, xAt, yAt } from '../src/curve';

const box: IBox = { width: 110, height: 60, pad: 5 };

test('xAt spreads steps over the inner width and stepAt inverts it', () => {
  assert.deepEqual([0, 5, 10].map(i => xAt(i, 11, box)), [5, 55, 105]);
  assert.equal(xAt(0, 1, box), 55);
  for (let i = 0; i < 11; i++) {
    assert.equal(stepAt(xAt(i, 11, box) + 2, 11, box), i);
  }
  assert.equal(stepAt(-50, 11, box), 0);
  assert.equal(stepAt(500, 11, box), 10);
});

test('yAt puts larger values higher', () => {
  assert.equal(yAt(0, [0, 1], box), 55);
  assert.equal(yAt(1, [0, 1], box), 5);
  assert.equal(yAt(3, [3, 3], box), 30);
});

test('curveDomain pads and handles empty and constant series', () => {
  assert.deepEqual(curveDomain([]), [0, 1]);
  const [lo, hi] = curveDomain([0.5, null, 1.5], [1]);
  assert.ok(Math.abs(lo - 0.42) < 1e-12 && Math.abs(hi - 1.58) < 1e-12);
  assert.deepEqual(curveDomain([0, 1]), [0, 1.08]); // scores >= 0 keep a zero floor
  assert.deepEqual(curveDomain([-1, 1]), [-1.16, 1.16]);
  assert.deepEqual(curveDomain([2, 2]), [1.8, 2.2]);
});

test('linePath draws one point per step and breaks at nulls', () => {
  assert.equal(linePath([0, 1, null, 1], [0, 1], box), 'M5 55 L38.33 5 M105 5');
  assert.equal(linePath([null], [0, 1], box), '');
});
