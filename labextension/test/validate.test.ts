import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { parseTrace } from '../src/model';
import { LIMITS, TraceError, traceProblems } from '../src/validate';
import { smallTrace } from './helpers';

const problems = (over: Record<string, unknown>): string[] =>
  traceProblems({ ...(smallTrace() as unknown as Record<string, unknown>), ...over });

test('a well-formed trace has no problems', () => {
  assert.deepEqual(traceProblems(smallTrace() as unknown as Record<string, unknown>), []);
  assert.deepEqual(problems({ marks: [{ step: 2, label: 'unsure', note: 'hm' }] }), []);
});

test('an image grid larger than the image span is refused (the 1000x1000 freeze)', () => {
  const p = problems({ image_grid: [1000, 1000] });
  assert.deepEqual(p, ['image_grid [1000, 1000] needs 1000000 image tokens but spans.image holds 4']);
  assert.throws(() => parseTrace({ ...smallTrace(), image_grid: [1000, 1000] }), TraceError);
  assert.throws(() => parseTrace({ ...smallTrace(), image_grid: [1000, 1000] }), /needs 1000000 image tokens/);
});

test('grid and spans: wrong types, negatives, huge numbers, out of range', () => {
  assert.match(problems({ image_grid: ['2', 2] })[0]!, /image_grid\[0\] must be an integer, got the string "2"/);
  assert.match(problems({ image_grid: [2, 1e300] })[0]!, /image_grid\[1\] = 1e\+300 is outside 1\.\.65536/);
  assert.match(problems({ image_grid: [0, 4] })[0]!, /outside 1\.\./);
  assert.match(problems({ image_grid: [2, 2, 1] })[0]!, /image_grid has 3 entries/);
  const spans = { system: null, image: [2, 999], prompt: [6, 9], output: [9, 12] };
  assert.match(problems({ spans })[0]!, /spans\.image\[1\] = 999 is outside 2\.\.12/);
  assert.match(problems({ spans: 'x' })[0]!, /spans must be an object/);
});

test('steps: missing fields, wrong types and NaN strings are named', () => {
  const t = smallTrace();
  const bad = (over: Record<string, unknown>): string[] => {
    const steps = t.steps.map((s, i) => (i === 1 ? { ...s, ...over } : s));
    return problems({ steps });
  };
  assert.deepEqual(bad({ saliency: 'NaN' }), ['steps[1].saliency must be a finite number or null, got the string "NaN"']);
  assert.deepEqual(bad({ token: undefined }), ['steps[1].token must be a string, got undefined']);
  assert.deepEqual(bad({ position: 10 ** 15 }), ['steps[1].position = 1000000000000000 is outside 0..11']);
  assert.deepEqual(bad({ prob: null, tau: '0.2' }), ['steps[1].tau must be a finite number or null, got the string "0.2"']);
  assert.deepEqual(bad({ row: [[1, 'NaN']] }), ['steps[1].row[0][1] must be a finite number, got the string "NaN"']);
  // a row longer than the keys 0..q it can cover (shape inconsistent with position)
  assert.deepEqual(bad({ row: [new Array(50).fill(0)] }), ["steps[1].row[0] has 50 values but the step's position 9 allows keys 0..9 only"]);
  assert.deepEqual(bad({ candidates: [{ token: 3, prob: 0.1, saliency: null, round: null, accepted: true }] }),
    ['steps[1].candidates[0].token must be a string, got 3']);
  assert.deepEqual(problems({ steps: [null] }), ['steps[0] must be an object, got null']);
});

test('too many steps or tokens is refused before walking them', () => {
  const p = problems({ steps: new Array(LIMITS.steps + 1).fill(0) });
  assert.deepEqual(p, [`steps has ${LIMITS.steps + 1} entries, more than the ${LIMITS.steps} this viewer draws`]);
  assert.match(problems({ tokens: ['a', 7] })[0]!, /tokens\[1\] must be a string/);
});

test('problems stop at 20 and the message shows four', () => {
  const t = smallTrace();
  const steps = new Array(50).fill(0).map(() => ({ ...t.steps[0]!, saliency: 'x' }));
  const p = problems({ steps });
  assert.equal(p.length, 20);
  const e = new TraceError(p);
  assert.match(e.message, /^this trace payload is invalid: steps\[0\]\.saliency .*; and 16 more\. Re-export it/);
});

test('marks: label and step are checked', () => {
  assert.deepEqual(problems({ marks: [{ step: 7, label: 'unsure' }] }), ['marks[0].step = 7 is outside 0..2']);
  assert.deepEqual(problems({ marks: [{ step: 0, label: 'wrong' }] }),
    ['marks[0].label must be one of hallucinated, unsure, correct, got the string "wrong"']);
});

test('parseTrace: invalid JSON text and a non-object are refused with a clear message', () => {
  assert.throws(() => parseTrace('{"schema": '), /not valid JSON/);
  assert.throws(() => parseTrace([1, 2]), /expected a JSON object/);
  assert.throws(() => parseTrace({ ...smallTrace(), image_png: '<script>' }), /image_png must be base64/);
});
