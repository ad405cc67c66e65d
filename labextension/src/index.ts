// Mime extension: renders application/vnd.lvsal.trace+json outputs and opens *.lvsal.json files.
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';

import { MIME_TYPE } from './model';
import { TraceRenderer } from './renderer';

export { MIME_TYPE } from './model';
export { TraceRenderer, TraceView } from './renderer';

export const FILE_TYPE = 'lvsal-trace';

export const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true, // builds DOM from text only; no HTML or scripts from the payload
  mimeTypes: [MIME_TYPE],
  createRenderer: options => new TraceRenderer(options)
};

const extension: IRenderMime.IExtension = {
  id: 'lvsal-nb-labextension:trace',
  description: 'Saliency trace viewer for lvsal-nb',
  rendererFactory,
  rank: 0, // preferred over the text/plain repr
  dataType: 'json',
  fileTypes: [
    {
      name: FILE_TYPE,
      displayName: 'LVSAL trace',
      mimeTypes: [MIME_TYPE],
      extensions: ['.lvsal.json'],
      fileFormat: 'text',
      icon: 'ui-components:json'
    }
  ],
  documentWidgetFactoryOptions: {
    name: 'LVSAL Trace',
    label: 'LVSAL Trace',
    primaryFileType: FILE_TYPE,
    fileTypes: [FILE_TYPE],
    defaultFor: [FILE_TYPE]
  }
};

export default extension;
