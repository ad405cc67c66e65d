import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { BOKEHJS_MIME_TYPE, bokehjsUrl, requestedVersion } from '../src/bokehjsurl';

test('the copy of BokehJS is found under this extension, by version', () => {
  assert.equal(
    bokehjsUrl('3.9.2', 'http://h:8888/lab/extensions/'),
    'http://h:8888/lab/extensions/lvsal-nb-labextension/static/bokeh-3.9.2.min.js'
  );
  assert.equal(bokehjsUrl('3.10.0.dev1', '/x/lab/extensions'), '/x/lab/extensions/lvsal-nb-labextension/static/bokeh-3.10.0.dev1.min.js');
  assert.throws(() => bokehjsUrl('../../etc', '/lab/extensions'), /not a BokehJS version/); // no path tricks
});

test('a loader output names the version it needs', () => {
  assert.equal(BOKEHJS_MIME_TYPE, 'application/vnd.lvsal.bokehjs.v1+json');
  assert.equal(requestedVersion({ version: '3.9.2' }), '3.9.2');
  assert.equal(requestedVersion({ version: '' }), null);
  assert.equal(requestedVersion({ version: 3 }), null);
  assert.equal(requestedVersion(null), null);
});
