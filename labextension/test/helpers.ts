import { IStep, ITrace } from '../src/model';

/** A small hand-made trace: system 0..2, image 2..6 (2x2), prompt 6..9, outputs 9..12. */
export function smallTrace(over: Partial<ITrace> = {}): ITrace {
  const step = (i: number, saliency: number | null, row: number[][] | null): IStep => ({
    step: i, position: 8 + i, token: ['A', ' cat', '\n'][i] ?? '?', prob: 0.5, logprob: Math.log(0.5),
    saliency, layer_scores: null, row, tau: i === 0 ? null : 0.2, decision: 'greedy', round: null,
    candidates: []
  });
  const ramp = (n: number, scale: number): number[] => Array.from({ length: n }, (_, k) => (k + 1) * scale);
  return {
    schema: 'lvsal.trace', schema_version: 1, trace_id: 'abc', created: '2025-01-01T00:00:00+00:00',
    prompt: 'Describe.', config: { engine: 'step', layers: [1, 2] },
    spans: { system: [0, 2], image: [2, 6], prompt: [6, 9], output: [9, 12] },
    tokens: ['<s>', 'sys', '<image>', '<image>', '<image>', '<image>', 'Des', 'cribe', ':', 'A', ' cat', '\n'],
    token_ids: Array.from({ length: 12 }, (_, k) => k), image_grid: [2, 2], image_png: null, layers: [1, 2],
    steps: [
      step(0, 0.4, [ramp(9, 1), ramp(9, 3)]),
      step(1, 0.1, [ramp(10, 1), ramp(10, 1)]),
      step(2, null, null)
    ],
    ...over
  };
}
