/**
 * What the sidebar shows, kept fresh by polls: queues, agents, one queue's items (or every
 * queue's), the selected item and its live log tail.
 */

import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import {
  Agent,
  Item,
  ItemList,
  LOADING_META,
  LaunchAPIError,
  LaunchClient,
  Meta,
  Queue,
  Schedule,
  isTerminal
} from './api';

/** Where a log tail reads from: the client's `logs` call. */
export type LogSource = Pick<LaunchClient, 'logs'>;

/**
 * The log of one item read piece by piece: each `fetch` asks for the text after the byte
 * offset the server gave last (`next_offset`, bytes of UTF-8, not characters) and appends it.
 */
export class LogTail implements IDisposable {
  /**
   * @param maxChars keep at most this many characters (the oldest are dropped: a tail).
   * @param maxPages read at most this many pages per fetch.
   * @param pageBytes the most the server sends at once (1 MiB): a page this long means more
   *   is waiting, so the next page is read at once rather than on the next tick.
   */
  constructor(
    private readonly _source: LogSource,
    readonly itemId: string,
    readonly maxChars = 400_000,
    readonly maxPages = 4,
    readonly pageBytes = 1 << 20
  ) {}

  /** The log text read so far (its last `maxChars` characters). */
  get text(): string {
    return this._text;
  }

  /** The byte offset to read from next. */
  get offset(): number {
    return this._offset;
  }

  /** The item is finished and the whole log has been read. */
  get done(): boolean {
    return this._done;
  }

  /** Whether older text was dropped to stay under `maxChars`. */
  get truncated(): boolean {
    return this._truncated;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /**
   * Read what is new; true when text was added. Concurrent calls share one request, and an
   * answer that arrives after `dispose` (another item was selected) is dropped.
   */
  fetch(): Promise<boolean> {
    if (this._pending === null) {
      this._pending = this._read().finally(() => {
        this._pending = null;
      });
    }
    return this._pending;
  }

  dispose(): void {
    this._disposed = true;
  }

  private async _read(): Promise<boolean> {
    let changed = false;
    for (let page = 0; page < this.maxPages && !this._done && !this._disposed; page++) {
      const answer = await this._source.logs(this.itemId, this._offset);
      if (this._disposed) {
        return false;
      }
      const full = answer.next_offset - this._offset >= this.pageBytes;
      if (answer.text) {
        this._append(answer.text);
        changed = true;
      }
      this._offset = Math.max(this._offset, answer.next_offset);
      this._done = answer.done;
      if (!full) {
        break;
      }
    }
    return changed;
  }

  private _append(text: string): void {
    const joined = this._text + text;
    if (joined.length > this.maxChars) {
      this._text = joined.slice(joined.length - this.maxChars);
      this._truncated = true;
    } else {
      this._text = joined;
    }
  }

  private _text = '';
  private _offset = 0;
  private _done = false;
  private _truncated = false;
  private _disposed = false;
  private _pending: Promise<boolean> | null = null;
}

export interface LaunchModelOptions {
  client: LaunchClient;
  /** Milliseconds between refreshes of queues, items and agents (default 2000). */
  interval?: number;
  /** Milliseconds between log reads of a running item (default 1000). */
  logInterval?: number;
  /** The longest wait after repeated failures, in milliseconds (default 30000). */
  maxInterval?: number;
  /** How many items a list shows (default 100). */
  itemLimit?: number;
  /** When the polls rest: 'when-hidden' (the page is hidden), or a function (the panel). */
  standby?: Poll.Standby | (() => boolean | Poll.Standby);
  /** Start polling at once (default true). */
  auto?: boolean;
}

/**
 * The sidebar's state, refreshed by a `@lumino/polling` Poll that backs off on errors; the
 * server's meta is read with the first refresh and kept.
 */
export class LaunchModel implements IDisposable {
  constructor(options: LaunchModelOptions) {
    this.client = options.client;
    this._itemLimit = options.itemLimit ?? 100;
    this._standby = options.standby ?? 'when-hidden';
    this._logInterval = options.logInterval ?? 1000;
    this._maxInterval = options.maxInterval ?? 30_000;
    this.poll = new Poll({
      name: 'launch-jupyter:overview',
      factory: () => this._refresh(),
      frequency: {
        interval: options.interval ?? 2000,
        backoff: true,
        max: this._maxInterval
      },
      standby: this._standby,
      auto: options.auto ?? true
    });
  }

  readonly client: LaunchClient;
  readonly poll: Poll;

  /** Emitted whenever anything the sidebar shows changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * The server's states, symbols, priorities, default queue and lease ttl; `LOADING_META`
   * only until the server answers.
   */
  get meta(): Readonly<Meta> {
    return this._meta ?? LOADING_META;
  }

  /** Whether the server's meta has answered. */
  get metaLoaded(): boolean {
    return this._meta !== null;
  }

  /** The server's meta, read once; concurrent calls share the request, a failed read is retried. */
  loadMeta(): Promise<Meta> {
    if (this._meta !== null) {
      return Promise.resolve(this._meta);
    }
    if (this._metaPending === null) {
      this._metaPending = this.client
        .meta()
        .then(meta => {
          if (!this._disposed) {
            this._meta = meta;
            this._changed.emit();
          }
          return meta;
        })
        .finally(() => {
          this._metaPending = null;
        });
    }
    return this._metaPending;
  }

  get queues(): readonly Queue[] {
    return this._queues;
  }

  get agents(): readonly Agent[] {
    return this._agents;
  }

  /** Cron schedules by name (none from a server without the schedules route). */
  get schedules(): readonly Schedule[] {
    return this._schedules;
  }

  /** Pause (`paused` true) or resume schedule `name`; the refresh that follows shows it. */
  async setSchedulePaused(name: string, paused: boolean): Promise<void> {
    await this._act(() =>
      paused ? this.client.pauseSchedule(name) : this.client.resumeSchedule(name)
    );
  }

  /** Items of the selected queue (every queue when none is), newest first. */
  get items(): readonly Item[] {
    return this._items;
  }

  /** How many items match over all pages. */
  get total(): number {
    return this._total;
  }

  get selectedQueue(): string | null {
    return this._selectedQueue;
  }

  /** The selected item as last read (null until the first read answers). */
  get item(): Item | null {
    return this._item;
  }

  get selectedItemId(): string | null {
    return this._selectedItemId;
  }

  get log(): LogTail | null {
    return this._log;
  }

  /** Why the job filter lists nothing (it names no job), or null. */
  get filterNote(): string | null {
    return this._filterNote;
  }

  /** Why the last refresh failed, or null. */
  get error(): string | null {
    return this._error;
  }

  /** When the data was last read successfully. */
  get refreshedAt(): Date | null {
    return this._refreshedAt;
  }

  /** Whether the first refresh has answered. */
  get loaded(): boolean {
    return this._refreshedAt !== null;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Refresh now (resetting any backoff); resolves once the new data is in. */
  async refresh(): Promise<void> {
    await this.poll.refresh();
    await this.poll.tick.catch(() => undefined); // rejects only when disposed meanwhile
  }

  /** Show the items of queue `name` (null: every queue). */
  selectQueue(name: string | null): Promise<void> {
    if (name === this._selectedQueue) {
      return Promise.resolve();
    }
    this._selectedQueue = name;
    this._items = [];
    this._total = 0;
    this._changed.emit();
    return this.refresh();
  }

  /** The items list's filters: a state (null: every state) and a job (`name[:vN]`). */
  get filter(): Readonly<{ state: string | null; job: string | null }> {
    return this._filter;
  }

  /** Filter the items list by state and job (null: no filter); refreshes at once. */
  setFilter(filter: { state?: string | null; job?: string | null }): Promise<void> {
    this._filter = { ...this._filter, ...filter };
    this._items = [];
    this._total = 0;
    this._changed.emit();
    return this.refresh();
  }

  /** Show item `id` with its log tail (null: back to the list). */
  selectItem(id: string | null): Promise<void> {
    if (id === this._selectedItemId) {
      return Promise.resolve();
    }
    this._stopLog();
    this._selectedItemId = id;
    this._item = id === null ? null : (this._items.find(i => i.id === id) ?? null);
    this._actionError = null;
    if (id !== null) {
      const tail = new LogTail(this.client, id);
      this._log = tail;
      this._logPoll = new Poll({
        name: 'launch-jupyter:log',
        factory: () => this._readLog(tail),
        frequency: { interval: this._logInterval, backoff: true, max: this._maxInterval },
        standby: this._standby
      });
    }
    this._changed.emit();
    return this.refresh();
  }

  /** Why the last action (cancel, requeue, open) failed, or null. */
  get actionError(): string | null {
    return this._actionError;
  }

  /** Ask to cancel item `id`; the refresh that follows shows the outcome. */
  async cancel(id: string): Promise<void> {
    await this._act(() => this.client.cancel(id));
  }

  /** Put a copy of the finished item `id` on its queue and select the copy. */
  async requeue(id: string): Promise<Item | null> {
    const item = await this._act(() => this.client.requeue(id));
    if (item) {
      this._items = [item, ...this._items.filter(i => i.id !== item.id)];
      await this.selectItem(item.id);
    }
    return item;
  }

  /** The executed notebook's path (relative to the server's root dir), or null. */
  notebookPath(id: string): Promise<string | null> {
    return this._act(async () => (await this.client.notebook(id)).path);
  }

  /** The path under the root dir of the item's output file `name`, copied there if need be. */
  outputPath(id: string, name: string): Promise<string | null> {
    return this._act(async () => (await this.client.output(id, name)).path);
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._stopLog();
    stopPoll(this.poll);
    Signal.clearData(this);
  }

  private async _act<T>(action: () => Promise<T>): Promise<T | null> {
    this._actionError = null;
    try {
      const result = await action();
      void this.refresh();
      return result;
    } catch (err) {
      this._actionError = messageOf(err);
      this._changed.emit();
      return null;
    }
  }

  private async _refresh(): Promise<void> {
    const itemId = this._selectedItemId;
    const queue = this._selectedQueue;
    const filter = this._filter;
    try {
      const [queues, agents, listing, item, , schedules] = await Promise.all([
        this.client.queues(),
        this.client.agents(),
        this.client
          .items({
            queue,
            state: filter.state ? [filter.state] : undefined,
            job: filter.job,
            limit: this._itemLimit
          })
          .catch(err => this._missingFilter(err, queue, filter)),
        itemId === null ? Promise.resolve(null) : this.client.item(itemId),
        // Read with the first data so it never shows with the fallback; on failure the
        // fallback stays and the next refresh asks again.
        this._meta === null ? this.loadMeta().catch(() => null) : null,
        this.client.schedules().catch(noSchedulesRoute)
      ]);
      if (this._disposed) {
        return;
      }
      this._queues = queues;
      this._agents = agents;
      this._schedules = schedules;
      if (queue === this._selectedQueue && filter === this._filter) {
        this._items = listing.items;
        this._total = listing.total;
        this._filterNote = (listing as { note?: string }).note ?? null;
      }
      if (itemId !== null && itemId === this._selectedItemId) {
        this._item = item;
        this._resumeLog();
      }
      this._error = null;
      this._refreshedAt = new Date();
    } catch (err) {
      if (err instanceof LaunchAPIError && err.status === 404 && itemId !== null) {
        // The selected item was deleted: go back to the list rather than fail every tick.
        this._stopLog();
        this._selectedItemId = null;
        this._item = null;
      }
      this._error = messageOf(err);
      this._changed.emit();
      throw err; // the poll backs off
    }
    this._changed.emit();
  }

  /**
   * A 404 on the items list. A job filter naming no job lists nothing, with the server's
   * reason (`did you mean 'train'?`) beside the filter; the queue and item stay selected.
   * A queue deleted while selected: show every queue instead.
   */
  private _missingFilter(
    err: unknown,
    queue: string | null,
    filter: Readonly<{ job: string | null }>
  ): ItemList & { note?: string } {
    if (err instanceof LaunchAPIError && err.status === 404) {
      if (filter.job && err.message.startsWith('job ')) {
        return { items: [], total: 0, note: err.message };
      }
      if (queue !== null) {
        this._selectedQueue = null;
      }
    }
    throw err;
  }

  private async _readLog(tail: LogTail): Promise<void> {
    const changed = await tail.fetch();
    if (tail !== this._log) {
      return;
    }
    if (tail.done) {
      // Nothing more will come: rest until another item is selected or this one requeued.
      void this._logPoll?.stop();
    }
    if (changed) {
      this._changed.emit();
    }
  }

  /** Restart a finished log poll when its item is not finished after all. */
  private _resumeLog(): void {
    if (this._log && this._logPoll && !this._log.done && this._logPoll.state.phase === 'stopped') {
      void this._logPoll.start();
    }
  }

  private _stopLog(): void {
    if (this._logPoll) {
      stopPoll(this._logPoll);
      this._logPoll = null;
    }
    this._log?.dispose();
    this._log = null;
  }

  private readonly _itemLimit: number;
  private readonly _standby: Poll.Standby | (() => boolean | Poll.Standby);
  private readonly _logInterval: number;
  private readonly _maxInterval: number;
  private _meta: Meta | null = null;
  private _metaPending: Promise<Meta> | null = null;
  private _queues: Queue[] = [];
  private _agents: Agent[] = [];
  private _schedules: Schedule[] = [];
  private _items: Item[] = [];
  private _total = 0;
  private _selectedQueue: string | null = null;
  private _filter: Readonly<{ state: string | null; job: string | null }> = {
    state: null,
    job: null
  };
  private _selectedItemId: string | null = null;
  private _item: Item | null = null;
  private _log: LogTail | null = null;
  private _logPoll: Poll | null = null;
  private _error: string | null = null;
  private _filterNote: string | null = null;
  private _actionError: string | null = null;
  private _refreshedAt: Date | null = null;
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
}

/** Dispose `poll` after clearing its timer (dispose alone leaves the timer pending). */
function stopPoll(poll: Poll): void {
  void poll.stop();
  poll.dispose();
}

/** A server older than schedules answers 404 on their route: it has none. */
function noSchedulesRoute(err: unknown): Schedule[] {
  if (err instanceof LaunchAPIError && err.status === 404) {
    return [];
  }
  throw err;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Whether the item can still be cancelled. */
export function canCancel(item: Item, meta: Pick<Meta, 'terminal'>): boolean {
  return !isTerminal(item.state, meta) && !item.cancel_requested;
}

/** Whether the item can be requeued (only finished items can). */
export function canRequeue(item: Item, meta: Pick<Meta, 'terminal'>): boolean {
  return isTerminal(item.state, meta);
}

/** Whether the item kept an executed notebook. */
export function hasNotebook(item: Item): boolean {
  return !!item.executed_notebook || item.outputs.some(o => o.kind === 'notebook');
}
