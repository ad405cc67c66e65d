// A notebook output that carries both a widget view and the lvsal trace bundle (the notebook viewer
// and Tuner, lvsal_nb/widgets): show the live widget only while the kernel's widget manager has its
// model; otherwise (a reopened notebook, no kernel, a restarted kernel) the caller renders the
// saved trace instead of ipywidgets' "Error displaying widget: model not found".
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';

export const WIDGET_MIME_TYPE = 'application/vnd.jupyter.widget-view+json';

/** What the ipywidgets widget manager offers here (jupyter-widgets/base ManagerBase). */
interface IManagerLike {
  has_model(modelId: string): boolean;
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
 *  null otherwise (nothing is left behind). */
export async function widgetFallback(
  registry: { getFactory(mimeType: string): IRenderMime.IRendererFactory | undefined },
  options: IRenderMime.IRendererOptions,
  model: IRenderMime.IMimeModel
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
    return renderer;
  }
  renderer.dispose();
  return null;
}
