// A notebook output that carries both a widget view and the lvsal trace bundle (the notebook viewer
// and Tuner, lvsal_nb/widgets): show the live widget only while the kernel's widget manager has its
// model; otherwise (a reopened notebook, no kernel, a restarted kernel) the caller renders the
// saved trace instead of ipywidgets' "Error displaying widget: model not found".
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';

export const WIDGET_MIME_TYPE = 'application/vnd.jupyter.widget-view+json';

/** What the ipywidgets widget manager offers here (jupyter-widgets/base ManagerBase). */
interface IManagerLike {
  has_model(modelId: string): boolean;
  get_model?(modelId: string): Promise<IModelLike> | undefined;
}

/** A widget model (jupyter-widgets/base WidgetModel, a Backbone model): `comm_live` turns false,
 *  with a "comm_live_update" event, when the kernel restarts (the manager's `disconnect()`). */
interface IModelLike {
  comm_live: boolean;
  on(event: string, callback: () => void): void;
  off?(event: string, callback: () => void): void;
}

/** Call `onDead` once when the widget's comm goes dead (kernel restarted or shut down). */
async function watchComm(manager: IManagerLike, modelId: string, onDead: () => void): Promise<void> {
  let model: IModelLike | undefined;
  try {
    model = await manager.get_model?.(modelId);
  } catch {
    return;
  }
  if (!model || typeof model.on !== 'function') {
    return;
  }
  const m = model;
  const check = (): void => {
    if (!m.comm_live) {
      m.off?.('comm_live_update', check);
      onDead();
    }
  };
  m.on('comm_live_update', check);
}

/** The manager of an ipywidgets WidgetRenderer, if one is attached now. The renderer keeps it in a
 *  PromiseDelegate (`_manager`) that resolves once the notebook's kernel has a widget manager; a
 *  renderer from a notebook without a kernel never gets one, so wait only for a resolved one. */
async function managerOf(renderer: unknown): Promise<IManagerLike | null> {
  const delegate = (renderer as { _manager?: { promise?: Promise<unknown> } })._manager;
  if (!delegate?.promise) {
    return null;
  }
  const now = new Promise<null>(resolve => setTimeout(() => resolve(null), 0));
  const m = (await Promise.race([delegate.promise, now])) as Partial<IManagerLike> | null;
  return m && typeof m.has_model === 'function' ? (m as IManagerLike) : null;
}

/** The widget renderer, already rendered, when the kernel has the model of `model`'s widget view;
 *  null otherwise (nothing is left behind). `onDead` is called once if the widget's kernel later
 *  restarts or shuts down: its views then hold a dead comm (see stopBokehViews). */
export async function widgetFallback(
  registry: { getFactory(mimeType: string): IRenderMime.IRendererFactory | undefined },
  options: IRenderMime.IRendererOptions,
  model: IRenderMime.IMimeModel,
  onDead?: () => void
): Promise<IRenderMime.IRenderer | null> {
  const view = model.data[WIDGET_MIME_TYPE] as { model_id?: unknown } | undefined;
  const factory = registry.getFactory(WIDGET_MIME_TYPE);
  if (!factory || typeof view?.model_id !== 'string' || !view.model_id) {
    return null;
  }
  const renderer = factory.createRenderer({ ...options, mimeType: WIDGET_MIME_TYPE });
  const manager = await managerOf(renderer);
  if (manager && manager.has_model(view.model_id)) {
    await renderer.renderModel(model);
    if (onDead) {
      void watchComm(manager, view.model_id, onDead);
    }
    return renderer;
  }
  renderer.dispose();
  return null;
}

/** Remove the Bokeh root views drawn inside `host` (jupyter_bokeh's BokehModel views). Once their
 *  kernel is gone, every layout change of a view (a resize, a scroll, outputs added above it) is a
 *  document change that jupyter_bokeh sends on the dead comm: an uncaught "Cannot send" each time
 *  (33 after one restart, issue 19 item 8). A removed view no longer lays out, so sends nothing.
 *  Returns how many views were removed. */
export function stopBokehViews(host: HTMLElement): number {
  type RootView = { el?: Element; remove(): void };
  const bokeh = (window as unknown as { Bokeh?: { index?: { roots?: Iterable<RootView> } } }).Bokeh;
  const roots = bokeh?.index?.roots;
  if (!roots) {
    return 0;
  }
  let n = 0;
  for (const v of [...roots]) {
    if (v.el && host.contains(v.el)) {
      v.remove();
      n++;
    }
  }
  return n;
}
