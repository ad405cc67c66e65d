// *.lvsal.parquet files are binary; JupyterLab's default editor says "not UTF-8 encoded". This
// viewer says what to do instead and, when `Trace.save` wrote a .lvsal.json beside it, shows that.
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { parseTrace } from './model';
import { TraceView } from './renderer';

export const PARQUET_MIME_TYPE = 'application/vnd.lvsal.trace+parquet';
export const PARQUET_FILE_TYPE = 'lvsal-trace-parquet';

/** The `.lvsal.json` sibling's name of a `.lvsal.parquet` path (basename only). */
export function jsonSibling(path: string): string {
  const base = path.split('/').pop() ?? path;
  return base.replace(/\.parquet$/i, '.json');
}

export class ParquetRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(options: IRenderMime.IRendererOptions) {
    super();
    this._resolver = options.resolver ?? null;
    this.addClass('jp-LvsalTrace');
    this.addClass('jp-LvsalParquet');
  }

  async renderModel(_model: IRenderMime.IMimeModel): Promise<void> {
    this.node.textContent = '';
    const path = (this._resolver as { path?: unknown } | null)?.path; // the document's path (UrlResolver)
    const sibling = typeof path === 'string' ? jsonSibling(path) : null;
    const msg = document.createElement('div');
    msg.className = 'jp-LvsalTrace-message';
    msg.textContent =
      'This is a binary lvsal trace (Parquet). Open it in a notebook with ' +
      `lv.Trace.load(${JSON.stringify(typeof path === 'string' ? path : 'file.lvsal.parquet')}), ` +
      `or open the .json beside it${sibling ? ` (${sibling})` : ''}: tr.save("….lvsal.json") writes one.`;
    this.node.appendChild(msg);
    if (!sibling || !this._resolver) {
      return;
    }
    try {
      const url = await this._resolver.getDownloadUrl(await this._resolver.resolveUrl(sibling));
      const res = await fetch(url, { credentials: 'same-origin' });
      if (!res.ok) {
        return; // no sibling: the message says what to do
      }
      const trace = parseTrace(await res.text());
      const note = document.createElement('div');
      note.className = 'jp-LvsalTrace-note';
      note.textContent = `Showing ${sibling}, saved beside this file.`;
      this.node.appendChild(note);
      new TraceView(trace, this.node);
    } catch (err) {
      const e = document.createElement('div');
      e.className = 'jp-LvsalTrace-error';
      e.textContent = `Cannot show ${sibling}: ${(err as Error).message}`;
      this.node.appendChild(e);
    }
  }

  private _resolver: IRenderMime.IResolver | null;
}
