// BokehJS for the notebook viewers, loaded from this extension instead of the notebook file
// (issue 19 item 7). The kernel (lvsal_nb/widgets/bokehjs.py) shows one output per kernel with
// {version} under BOKEHJS_MIME_TYPE and JavaScript for frontends without this extension; this
// renderer is preferred over that JavaScript, so in JupyterLab and Notebook 7 `window.Bokeh` comes
// from static/bokeh-<version>.min.js (copied from the bokeh package at build time, see
// scripts/copy-bokehjs.js), fetched once by the browser and cached.
//
// It is loaded synchronously (a synchronous request, then a script element): jupyter_bokeh's
// widget view calls `window.Bokeh.require` as soon as it is made, which can be right after this
// output, so an asynchronous load would race with it.
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { BOKEHJS_MIME_TYPE, bokehjsUrl, requestedVersion } from './bokehjsurl';

export { BOKEHJS_MIME_TYPE };
const JS_MIME_TYPE = 'application/javascript';

/** Where BokehJS came from: already on the page, this extension's copy, the output's own
 *  JavaScript (no matching copy here), or nowhere. */
export type BokehSource = 'present' | 'extension' | 'inline' | 'missing';

/** JupyterLab's (and Notebook 7's) base URL of lab extensions, from the page config. */
function extensionsUrl(): string {
  const el = document.getElementById('jupyter-config-data');
  const cfg = el?.textContent ? (JSON.parse(el.textContent) as Record<string, unknown>) : {};
  const full = cfg['fullLabextensionsUrl'];
  return typeof full === 'string' ? full : '/lab/extensions';
}

function fetchSync(url: string): string | null {
  try {
    const xhr = new XMLHttpRequest();
    xhr.open('GET', url, false);
    xhr.send();
    return xhr.status === 200 ? xhr.responseText : null;
  } catch {
    return null;
  }
}

function bokehVersion(): string | null {
  const b = (window as unknown as { Bokeh?: { version?: string } }).Bokeh;
  return b?.version ?? null;
}

function runScript(code: string): void {
  const s = document.createElement('script');
  s.textContent = code;
  document.head.appendChild(s); // an inline script runs when it is inserted, synchronously
  s.remove();
}

/** Put BokehJS `version` on the page (see the file comment); `inline` is the output's JavaScript. */
export function ensureBokehJS(version: string, inline: string | undefined, host: HTMLElement): BokehSource {
  if (bokehVersion() === version) {
    return 'present';
  }
  let url: string | null = null;
  try {
    url = bokehjsUrl(version, extensionsUrl());
  } catch {
    url = null; // not a version string: ask for nothing
  }
  const code = url === null ? null : fetchSync(url);
  if (code !== null) {
    runScript(code);
    if (bokehVersion() === version) {
      return 'extension';
    }
  }
  if (inline) {
    new Function('element', inline).call(window, host); // as JupyterLab runs JavaScript outputs
    if (bokehVersion() === version) {
      return 'inline';
    }
  }
  return 'missing';
}

/** Renders a loader output: nothing to see when BokehJS is there, else what to do. */
export class BokehJSRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(options: IRenderMime.IRendererOptions) {
    super();
    this._mimeType = options.mimeType;
    this.addClass('lvsal-bokehjs');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const version = requestedVersion(model.data[this._mimeType]);
    const inline = model.data[JS_MIME_TYPE];
    const source = version
      ? ensureBokehJS(version, typeof inline === 'string' ? inline : undefined, this.node)
      : 'missing';
    this.node.dataset.lvsalBokehjs = source;
    if (source !== 'present') {
      document.body.dataset.lvsalBokehjs = `${source} ${version}`; // how this page got it (tests)
    }
    this.node.textContent =
      source === 'missing'
        ? `BokehJS ${version ?? '?'} is not loaded here, so notebook viewers cannot draw: ` +
          'run lvsal_nb.load_bokehjs(force=True) in the kernel.'
        : '';
  }

  private _mimeType: string;
}

export const bokehjsRendererFactory: IRenderMime.IRendererFactory = {
  safe: false, // runs BokehJS (this extension's copy or the output's own script)
  mimeTypes: [BOKEHJS_MIME_TYPE],
  createRenderer: options => new BokehJSRenderer(options)
};
