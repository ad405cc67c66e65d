// Mime extensions: render application/vnd.lvsal.trace+json outputs and open *.lvsal.json files;
// *.lvsal.parquet files get a viewer that says how to open them (parquet.ts). The front-end plugin
// that lets notebook viewer outputs fall back to the saved trace is plugin.ts.
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';

import { BOKEHJS_MIME_TYPE, bokehjsRendererFactory } from './bokehjs';
import { MIME_TYPE } from './model';
import { PARQUET_FILE_TYPE, PARQUET_MIME_TYPE, ParquetRenderer } from './parquet';
import { RANK, TraceRenderer } from './renderer';

export { MIME_TYPE } from './model';
export { TraceRenderer, TraceView } from './renderer';

export const FILE_TYPE = 'lvsal-trace';

export const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true, // builds DOM from text only; no HTML or scripts from the payload
  mimeTypes: [MIME_TYPE],
  createRenderer: options => new TraceRenderer(options)
};

const traceExtension: IRenderMime.IExtension = {
  id: 'lvsal-nb-labextension:trace',
  description: 'Saliency trace viewer for lvsal-nb',
  rendererFactory,
  rank: RANK, // preferred over the text/plain repr and over a widget view (see plugin.ts)
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

const parquetExtension: IRenderMime.IExtension = {
  id: 'lvsal-nb-labextension:parquet',
  description: 'Explains how to open binary lvsal traces (*.lvsal.parquet)',
  rendererFactory: {
    safe: true,
    mimeTypes: [PARQUET_MIME_TYPE],
    createRenderer: options => new ParquetRenderer(options)
  },
  rank: 100,
  dataType: 'string', // the base64 content is not used
  fileTypes: [
    {
      name: PARQUET_FILE_TYPE,
      displayName: 'LVSAL trace (Parquet)',
      mimeTypes: [PARQUET_MIME_TYPE],
      extensions: ['.lvsal.parquet'],
      fileFormat: 'base64',
      icon: 'ui-components:spreadsheet'
    }
  ],
  documentWidgetFactoryOptions: {
    name: 'LVSAL Parquet',
    label: 'LVSAL Parquet',
    modelName: 'base64', // binary: the default text model fails with "not UTF-8 encoded"
    primaryFileType: PARQUET_FILE_TYPE,
    fileTypes: [PARQUET_FILE_TYPE],
    defaultFor: [PARQUET_FILE_TYPE]
  }
};

const bokehjsExtension: IRenderMime.IExtension = {
  id: 'lvsal-nb-labextension:bokehjs',
  description: 'BokehJS for lvsal-nb notebook viewers from this extension, not from the notebook',
  rendererFactory: bokehjsRendererFactory,
  rank: RANK, // preferred over the output's application/javascript (rank 0)
  dataType: 'json'
};
export { BOKEHJS_MIME_TYPE };

const extensions: IRenderMime.IExtension[] = [traceExtension, parquetExtension, bokehjsExtension];
export default extensions;
