/**
 * launch-jupyter's JupyterLab extension: the Launch sidebar, and "Submit this notebook to a
 * queue…" in the command palette and the notebook toolbar.
 */

import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDocumentWidget } from '@jupyterlab/docregistry';
import { Kernel, ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import { Item, LaunchClient, ResultsQuery } from './api';
import { launchIcon } from './icon';
import { EndNotifier } from './notify';
import { createResultsView } from './results';
import { LaunchSidebar } from './sidebar';
import { submitNotebook } from './submit';

namespace CommandIDs {
  export const submit = 'launch-jupyter:submit-notebook';
  export const open = 'launch-jupyter:open-sidebar';
  export const results = 'launch-jupyter:open-results';
}

/** A client that sends Jupyter's credentials and XSRF token with every request. */
function serverClient(): LaunchClient {
  const settings = ServerConnection.makeSettings();
  return new LaunchClient(settings.baseUrl, (url, init) =>
    ServerConnection.makeRequest(url, init, settings)
  );
}

/** The notebook document in `widget`, if it is one. */
function notebookOf(widget: Widget | null): IDocumentWidget | null {
  const doc = widget as Partial<IDocumentWidget> | null;
  const path = doc?.context?.path;
  return path && path.endsWith('.ipynb') ? (doc as IDocumentWidget) : null;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'launch-jupyter:plugin',
  description: 'The Launch sidebar: queues, items with live logs, agents; submit notebooks.',
  autoStart: true,
  optional: [ICommandPalette, ILayoutRestorer, ILabShell],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    labShell: ILabShell | null
  ) => {
    const client = serverClient();
    const current = () => notebookOf(labShell?.currentWidget ?? app.shell.currentWidget);

    /**
     * Open an item's executed notebook in a tab named apart from the user's own notebook
     * (`train:v3 · item 01J…`), not marked unsaved: it is a record, not an edit.
     */
    const openExecuted = async (path: string, itemId?: string): Promise<unknown> => {
      const widget = (await app.commands.execute('docmanager:open', { path })) as
        | IDocumentWidget
        | undefined;
      if (!widget?.context || !itemId) {
        return widget;
      }
      let item: Item | null = null;
      try {
        item = await client.item(itemId);
      } catch {
        // unnamed is better than not opened
      }
      await widget.context.ready;
      // A document tab renames its file when its label changes: not this record's.
      const renaming = (widget as unknown as { _onTitleChanged?: () => void })._onTitleChanged;
      if (renaming) {
        widget.title.changed.disconnect(renaming, widget);
      }
      const label = `${item?.job ?? 'executed'} · item ${itemId}`;
      const name = () => {
        widget.title.label = label;
        widget.title.caption = `executed notebook of item ${itemId}: ${path}`;
        widget.context.model.dirty = false;
      };
      name();
      widget.context.pathChanged.connect(name);
      // Once its kernel is up, JupyterLab writes the kernel's spec and language into the
      // metadata. The runner records the same ones, but a record opened with another
      // kernel (an environment's kernel, another display name) must not turn unsaved then:
      // a clean record stays clean after that write (the timeout runs after it).
      const keepClean = (kernel: Kernel.IKernelConnection | null | undefined) => {
        if (!kernel || widget.context.model.dirty) {
          return;
        }
        Promise.all([kernel.spec, kernel.info])
          .then(() => new Promise(resolve => setTimeout(resolve, 0)))
          .then(
            () => {
              if (!widget.isDisposed) {
                widget.context.model.dirty = false;
              }
            },
            () => undefined
          );
      };
      const sessionContext = widget.context.sessionContext;
      keepClean(sessionContext.session?.kernel);
      sessionContext.kernelChanged.connect((_, change) => keepClean(change.newValue));
      return widget;
    };
    const notifier = new EndNotifier(client, item =>
      client.notebook(item.id).then(nb => openExecuted(nb.path, item.id))
    );

    const sidebar = new LaunchSidebar({
      client,
      openNotebook: openExecuted,
      submitNotebook: () => app.commands.execute(CommandIDs.submit),
      openResults: (query: ResultsQuery) =>
        app.commands.execute(CommandIDs.results, { ...query })
    });
    app.shell.add(sidebar, 'left', { rank: 600 });
    restorer?.add(sidebar, sidebar.id);

    app.commands.addCommand(CommandIDs.submit, {
      label: 'Submit this notebook to a queue…',
      caption: 'Capture this notebook as a job and put it on a launch queue',
      icon: args => (args.toolbar ? launchIcon : undefined),
      isEnabled: () => current() !== null,
      execute: async () => {
        const notebook = current();
        if (notebook === null) {
          return;
        }
        if (notebook.context.model.dirty) {
          await notebook.context.save(); // the job is captured from the file on disk
        }
        const meta = sidebar.model.loadMeta();
        const item = await submitNotebook(client, notebook.context.path, meta);
        if (item) {
          notifier.watch(item.id); // a notification when it ends
          app.shell.activateById(sidebar.id);
          await sidebar.model.selectItem(item.id);
        }
      }
    });
    app.commands.addCommand(CommandIDs.results, {
      label: args =>
        args.sweep ? `Results of sweep ${args.sweep}` : args.queue ? `Results of ${args.queue}` : 'Launch results',
      caption: 'A sortable results table with the best run highlighted, and the comparison chart',
      execute: args => {
        const query: ResultsQuery = {
          sweep: typeof args.sweep === 'string' ? args.sweep : null,
          queue: typeof args.queue === 'string' ? args.queue : null
        };
        const view = createResultsView(client, query);
        const open = Array.from(app.shell.widgets('main')).find(w => w.id === view.id);
        if (open) {
          view.dispose();
          app.shell.activateById(open.id);
          return;
        }
        app.shell.add(view, 'main');
        app.shell.activateById(view.id);
      }
    });
    app.commands.addCommand(CommandIDs.open, {
      label: 'Show the Launch sidebar',
      execute: () => app.shell.activateById(sidebar.id)
    });
    if (palette) {
      palette.addItem({ command: CommandIDs.submit, category: 'Launch' });
      palette.addItem({ command: CommandIDs.open, category: 'Launch' });
      palette.addItem({ command: CommandIDs.results, category: 'Launch' });
    }
  }
};

export default plugin;
