// The front-end plugin (package.json jupyterlab.extension): gives every notebook's rendermime
// registry a trace renderer that can look up the widget renderer of the same notebook, so a viewer
// output shows the live widget when its model exists and the saved trace when not
// (widgetfallback.ts). Typed structurally: no @jupyterlab/application dependency.
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';

import { MIME_TYPE } from './model';
import { RANK, TraceRenderer } from './renderer';

interface IRegistryLike {
  getFactory(mimeType: string): IRenderMime.IRendererFactory | undefined;
  addFactory(factory: IRenderMime.IRendererFactory, rank?: number): void;
}

interface IAppLike {
  docRegistry: {
    addWidgetExtension(
      widgetName: string,
      extension: { createNew(widget: { content: { rendermime: IRegistryLike } }): void }
    ): unknown;
  };
}

/** A trace renderer factory bound to one notebook's registry. */
export function notebookFactory(registry: IRegistryLike): IRenderMime.IRendererFactory {
  return {
    safe: true, // builds DOM from text only; delegates to the widget renderer only for trusted outputs
    mimeTypes: [MIME_TYPE],
    createRenderer: options => new TraceRenderer(options, registry)
  };
}

const plugin = {
  id: 'lvsal-nb-labextension:widget-fallback',
  description: 'Saved lvsal trace instead of "model not found" for notebook viewer outputs',
  autoStart: true,
  activate: (app: IAppLike): void => {
    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: panel => {
        const rm = panel.content.rendermime;
        rm.addFactory(notebookFactory(rm), RANK);
      }
    });
  }
};

export default plugin;
