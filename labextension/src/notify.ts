/**
 * JupyterLab notifications for the items submitted from this JupyterLab session: when one
 * ends, a notification says so with its state and an "Open executed notebook" action.
 */

import { Notification } from '@jupyterlab/apputils';

import { Item, LaunchClient } from './api';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
const POLL_MS = 2000;

/** What the notification says about a finished item. */
export function endMessage(item: Item): string {
  const error = item.error?.message && item.error.message !== item.state ? `: ${item.error.message}` : '';
  return `Launch item ${item.id} (${item.job}) ${item.state}${error}`;
}

/** Watches submitted items until they end, then notifies once per item. */
export class EndNotifier {
  constructor(
    private readonly _client: LaunchClient,
    private readonly _openNotebook: (item: Item) => Promise<unknown>
  ) {}

  /** Watch `itemId` (an item this session submitted) until it ends. */
  watch(itemId: string): void {
    this._watched.add(itemId);
    if (this._timer === null) {
      this._timer = window.setInterval(() => void this._poll(), POLL_MS);
    }
  }

  /** The ids still watched. */
  get watched(): string[] {
    return [...this._watched];
  }

  dispose(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }

  private async _poll(): Promise<void> {
    for (const id of this._watched) {
      let item: Item;
      try {
        item = await this._client.item(id);
      } catch {
        continue; // the server is away for a moment: ask again next time
      }
      if (!TERMINAL.has(item.state)) {
        continue;
      }
      this._watched.delete(id);
      this._notify(item);
    }
    if (this._watched.size === 0) {
      this.dispose();
    }
  }

  private _notify(item: Item): void {
    const kind = item.state === 'succeeded' ? 'success' : item.state === 'failed' ? 'error' : 'warning';
    const actions = item.executed_notebook
      ? [
          {
            label: 'Open executed notebook',
            caption: item.executed_notebook,
            callback: () => void this._openNotebook(item)
          }
        ]
      : [];
    Notification.emit(endMessage(item), kind, { autoClose: false, actions });
  }

  private readonly _watched = new Set<string>();
  private _timer: number | null = null;
}
