// Where the lab extension keeps its copy of BokehJS, and what a loader output asks for (no DOM:
// unit-tested under node; the loading itself is bokehjs.ts).
export const BOKEHJS_MIME_TYPE = 'application/vnd.lvsal.bokehjs.v1+json';
export const NPM_NAME = 'lvsal-nb-labextension';

/** The URL of the extension's copy of BokehJS `version`, given the lab extensions' base URL. */
export function bokehjsUrl(version: string, extensionsUrl: string): string {
  if (!/^[0-9A-Za-z.+-]+$/.test(version)) {
    throw new Error(`not a BokehJS version: ${JSON.stringify(version)}`);
  }
  return `${extensionsUrl.replace(/\/+$/, '')}/${NPM_NAME}/static/bokeh-${version}.min.js`;
}

/** The version asked for by a loader output, or null when the payload has none. */
export function requestedVersion(data: unknown): string | null {
  const v = (data as { version?: unknown } | null)?.version;
  return typeof v === 'string' && v ? v : null;
}

