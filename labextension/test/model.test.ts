import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { candidateText, clampStep, contextView, imageGrid, marksByStep, meanRow, parseTrace, textStart, tokenText, traceMax } from '../src/model';
import { smallTrace } from './helpers';

test('parseTrace accepts objects and JSON text', () => {
  const t = smallTrace();
  assert.equal(parseTrace(t), t);
  assert.equal(parseTrace(JSON.stringify(t)).trace_id, 'abc');
});

test('parseTrace rejects other payloads with a fix', () => {
  assert.throws(() => parseTrace(null), /not an lvsal trace/);
  assert.throws(() => parseTrace({ schema: 'x' }), /missing schema 'lvsal.trace'/);
  assert.throws(() => parseTrace({ ...smallTrace(), schema_version: 2 }), /upgrade lvsal-nb/);
  assert.throws(() => parseTrace({ schema: 'lvsal.trace', schema_version: 1 }), /missing steps/);
});

test('meanRow averages layers and keeps length', () => {
  assert.deepEqual(meanRow([[1, 2], [3, 6]]), [2, 4]);
  assert.equal(meanRow(null), null);
  assert.equal(meanRow([]), null);
});

test('textStart follows the image, else the prompt', () => {
  assert.equal(textStart(smallTrace()), 6);
  const noImage = smallTrace({ spans: { system: [0, 2], image: null, prompt: [2, 9], output: [9, 12] } });
  assert.equal(textStart(noImage), 2);
});

test('imageGrid uses the recorded grid or a square-ish guess', () => {
  assert.deepEqual(imageGrid(smallTrace()), [2, 2]);
  assert.deepEqual(imageGrid(smallTrace({ image_grid: null, spans: { system: null, image: [0, 6], prompt: [6, 8], output: [8, 9] } })), [2, 3]);
  assert.equal(imageGrid(smallTrace({ spans: { system: null, image: null, prompt: [0, 9], output: [9, 12] } })), null);
});

test('contextView splits the mean row into image grid and text context (raw values)', () => {
  const v = contextView(smallTrace(), 0); // q = 8, mean row = 2 * (k + 1)
  assert.equal(v.q, 8);
  assert.ok(v.image);
  assert.deepEqual([v.image.rows, v.image.cols], [2, 2]);
  assert.equal(v.image.max, 12); // position 5
  assert.deepEqual(v.image.values, [6, 8, 10, 12]);
  assert.deepEqual(v.text.map(c => c.position), [6, 7, 8]);
  assert.deepEqual(v.text.map(c => c.raw), [14, 16, 18]);
  assert.equal(v.text[2]!.token, ':');
});

test('contextView without a row shows the context uncoloured', () => {
  const v = contextView(smallTrace(), 2);
  assert.equal(v.image, null);
  assert.deepEqual(v.text.map(c => c.raw), [0, 0, 0, 0, 0]);
  assert.throws(() => contextView(smallTrace(), 3), RangeError);
});

test('traceMax: per-trace scale tops over every step', () => {
  // step 0: mean row 2(k+1) -> image max 12 (k=5), text max 18 (k=8);
  // step 1: mean row (k+1) over q=9 -> image max 6, text max 10; step 2 no row
  assert.deepEqual(traceMax(smallTrace()), { saliency: 0.4, image: 12, text: 18 });
});

test('marksByStep keeps the latest mark per step', () => {
  const t = smallTrace({ marks: [{ step: 1, label: 'unsure' }, { step: 1, label: 'hallucinated', note: 'x' }] });
  assert.deepEqual([...marksByStep(t).entries()], [[1, { step: 1, label: 'hallucinated', note: 'x' }]]);
  assert.equal(marksByStep(smallTrace()).size, 0);
});

test('candidateText: greedy candidates without text show the step token or their id', () => {
  const t = smallTrace();
  const s = t.steps[1]!;
  const c = (token: string, accepted: boolean) => ({ token_id: 77, token, prob: 0.1, saliency: null, round: null, accepted });
  assert.equal(candidateText(c(' dog', false), s), '" dog"');
  assert.equal(candidateText(c('', true), s), '" cat"');
  assert.equal(candidateText(c('', false), s), 'id 77');
});

test('clampStep and tokenText', () => {
  const t = smallTrace();
  assert.deepEqual([-1, 0, 1.4, 9].map(i => clampStep(t, i)), [0, 0, 1, 2]);
  assert.equal(tokenText('a\nb\t'), 'a↵b⇥');
  assert.equal(tokenText(''), '∅');
});
