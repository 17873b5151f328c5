/**
 * The launch REST API (`<base_url>launch/api`, see launch_jupyter/server/openapi.yaml):
 * its JSON types, URL building and a small client over any fetch-like function.
 */

export type ItemState =
  | 'queued'
  | 'leased'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'cancelled';

/**
 * What the server knows and the sidebar renders and submits with (`GET meta`, served from
 * launch_jupyter/views/states.py and the server's LaunchConfig).
 */
export interface Meta {
  /** Every state, in the order counts are shown. */
  states: ItemState[];
  /** The states an item never leaves. */
  terminal: ItemState[];
  /** state -> a symbol that keeps the state readable without colour. */
  symbols: Record<string, string>;
  /** state -> `#rrggbb`. */
  colours: Record<string, string>;
  /** Priority names, highest first. */
  priorities: string[];
  default_priority: string;
  /** The queue a submit without one goes to (LaunchConfig.default_queue). */
  default_queue: string;
  /** Seconds a lease lasts without renewal (LaunchConfig.lease_ttl). */
  lease_ttl: number;
  /** Installed runner name -> one line of help. */
  runners: Record<string, string>;
}

/**
 * What the sidebar assumes only until the server's meta answers: the state words (so lists
 * and counts work) without symbols, no default queue or priorities, and LaunchConfig's
 * default lease ttl (so an agent's heartbeat reads sensibly).
 */
export const LOADING_META: Readonly<Meta> = {
  states: ['queued', 'leased', 'running', 'succeeded', 'failed', 'cancelled'],
  terminal: ['succeeded', 'failed', 'cancelled'],
  symbols: {},
  colours: {},
  priorities: [],
  default_priority: '',
  default_queue: '',
  lease_ttl: 30,
  runners: {}
};

/** Whether an item in `state` can never change again, by the server's `meta.terminal`. */
export function isTerminal(state: string, meta: Pick<Meta, 'terminal'>): boolean {
  return (meta.terminal as readonly string[]).includes(state);
}

export interface ItemError {
  message: string;
  stage?: string | null;
  cell?: number | string | null;
}

export interface ItemOutput {
  name: string;
  path: string;
  size: number;
  kind: 'file' | 'notebook';
}

export interface Item {
  id: string;
  queue: string;
  job: string;
  state: ItemState;
  attempt: number;
  max_attempts?: number;
  priority: string | number;
  parameters: Record<string, unknown>;
  overrides?: Record<string, unknown>;
  exit_code?: number | null;
  error?: ItemError | null;
  /** What holds the item up right now (e.g. a Kubernetes pod that cannot be scheduled). */
  warning?: string | null;
  cancel_requested?: boolean;
  created_at: string | null;
  started_at?: string | null;
  finished_at?: string | null;
  duration?: number | null;
  outputs: ItemOutput[];
  requeued_from: string | null;
  /** In item lists: why a queued item is not starting (no live agent serves its queue). */
  waiting?: string | null;
  log_bytes?: number;
  /** The running cell of a notebook run (1-based in the executed notebook), else null. */
  progress?: CellProgress | null;
  /** Each cell's seconds once a notebook run is over. */
  cells?: { cell: number; seconds: number }[] | null;
  /** The executed notebook's path: written after every cell, so it opens mid-run too. */
  executed_notebook?: string | null;
  /** The sweep this item is a trial of. */
  sweep_id?: string | null;
  /** The cron schedule that made this item. */
  schedule?: string | null;
  /** Run-after: the items it runs after, and (while queued) those not yet succeeded. */
  after?: string[];
  waiting_on?: string[];
  /** Runner details; ``gpus``: the GPUs its agent gave it (a gpus_per_item queue). */
  run?: { gpus?: (number | string)[] } & Record<string, unknown>;
  /** Each metric the latest attempt logged: last value, min, max, its step, point count. */
  metrics?: Record<string, MetricSummary>;
}

export interface MetricSummary {
  last: number;
  min: number;
  max: number;
  step: number;
  count: number;
}

/** One row of `GET results`: the parameters that vary and each metric's last value. */
export interface ResultRow {
  id: string;
  state: string;
  job: string;
  parameters: Record<string, unknown>;
  metrics: Record<string, number>;
  duration: number | null;
}

/** A Vega-Lite v5 spec with its data inline (drawn by vega-embed). */
export type VegaLiteSpec = Record<string, unknown>;

/** `GET charts/results`: the Results view in one answer. */
export interface ResultsChart {
  rows: ResultRow[];
  best: string | null;
  metric: string | null;
  goal: 'minimize' | 'maximize' | null;
  metrics: string[];
  spec: VegaLiteSpec | null;
}

/** `GET charts/items/{id}`: an item's metric summary and its metric-vs-step chart. */
export interface ItemChart {
  item: string;
  metrics: Record<string, MetricSummary>;
  spec: VegaLiteSpec | null;
}

/** Which results a Results view shows: a sweep's, a queue's, or every item's. */
export interface ResultsQuery {
  sweep?: string | null;
  queue?: string | null;
  sort?: string | null;
}

export interface CellProgress {
  cell: number;
  cells: number;
  cell_started_at: string | null;
  source: string;
}

export interface ItemList {
  items: Item[];
  total: number;
}

export interface Queue {
  name: string;
  runner: string;
  paused: boolean;
  max_attempts: number;
  timeout: number | null;
  created_at: string | null;
  counts: Record<string, number>;
}

/** A cron schedule: whichever agent serves its queue fires it, one item per firing. */
export interface Schedule {
  name: string;
  /** The job version each firing submits, `name:vN`. */
  job: string;
  queue: string;
  cron: string;
  timezone: string;
  overrides: Record<string, unknown>;
  paused: boolean;
  state: 'active' | 'paused';
  /** ISO 8601 (UTC). */
  next_fire_at: string | null;
  last_fired_at: string | null;
  last_item: string | null;
  /** How many items it made. */
  items: number;
  catch_up: boolean;
}

export interface SchemaProperty {
  type?: string | string[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  enum?: unknown[];
  title?: string;
  description?: string;
}

export interface JobSchema {
  type?: string;
  properties?: Record<string, SchemaProperty>;
  required?: string[];
}

export interface Job {
  name: string;
  version: number;
  ref: string;
  mode?: string | null;
  parameters: Record<string, unknown>;
  schema: JobSchema;
  /** Imports neither installed at capture nor covered by a pip line. */
  unresolved?: string[];
  /** What the capture that answered this could not record (POST /jobs; empty when read). */
  warnings?: string[];
}

export interface Agent {
  id: string;
  host: string;
  pid: number;
  queues: string[];
  max_jobs: number;
  started_at: string | null;
  heartbeat_at: string | null;
  heartbeat_age: number;
  running: number;
}

export interface LogPage {
  text: string;
  next_offset: number;
  done: boolean;
}

export interface ItemQuery {
  queue?: string | null;
  state?: readonly string[];
  /** `name` or `name:vN` */
  job?: string | null;
  sweep?: string | null;
  limit?: number;
  offset?: number;
}

export interface SubmitRequest {
  job: string;
  queue?: string | null;
  parameters?: Record<string, unknown>;
  priority?: string | number | null;
  template_values?: Record<string, unknown> | null;
}

type QueryValue = string | number | readonly string[] | null | undefined;

/**
 * The URL of `path` under `<baseUrl>launch/api/`, with `query` (empty and null values left out,
 * lists joined by commas). `path` segments must already be encoded (see `itemPath`).
 */
export function apiUrl(
  baseUrl: string,
  path: string,
  query: Record<string, QueryValue> = {}
): string {
  const base = baseUrl.endsWith('/') ? baseUrl : baseUrl + '/';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === null || value === undefined) {
      continue;
    }
    const text = typeof value === 'object' ? value.join(',') : String(value);
    if (text !== '') {
      params.append(key, text);
    }
  }
  const search = params.toString();
  return `${base}launch/api/${path.replace(/^\/+/, '')}${search ? '?' + search : ''}`;
}

/** `items/<id>[/<action>]` with the id encoded. */
export function itemPath(id: string, action?: string): string {
  const item = `items/${encodeURIComponent(id)}`;
  return action ? `${item}/${action}` : item;
}

/** A fresh `Idempotency-Key` value: one per user action. */
export function newIdempotencyKey(): string {
  if (typeof crypto.randomUUID === 'function') {
    return crypto.randomUUID();
  }
  // randomUUID needs a secure context (https or localhost); getRandomValues does not.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
}

/** A failed request: the server's `message` (or why the server could not be reached). */
export class LaunchAPIError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
    this.name = 'LaunchAPIError';
  }
}

/** Anything that sends a request like `fetch` (ServerConnection.makeRequest in Lab). */
export type Fetcher = (url: string, init: RequestInit) => Promise<Response>;

/** The launch REST API over `fetcher`. */
export class LaunchClient {
  constructor(
    readonly baseUrl: string,
    private readonly _fetch: Fetcher
  ) {}

  queues(): Promise<Queue[]> {
    return this._get('queues');
  }

  agents(): Promise<Agent[]> {
    return this._get('agents');
  }

  /** Every cron schedule by name. */
  schedules(): Promise<Schedule[]> {
    return this._get('schedules');
  }

  /** Stop schedule `name` firing (409 when it is already paused). */
  pauseSchedule(name: string): Promise<Schedule> {
    return this._post(`schedules/${encodeURIComponent(name)}/pause`);
  }

  /** Fire schedule `name` again from its next time after now (409 unless paused). */
  resumeSchedule(name: string): Promise<Schedule> {
    return this._post(`schedules/${encodeURIComponent(name)}/resume`);
  }

  /** States, symbols, priorities, the default queue and the lease ttl the server uses. */
  meta(): Promise<Meta> {
    return this._get('meta');
  }

  jobs(): Promise<Job[]> {
    return this._get('jobs');
  }

  items(query: ItemQuery = {}): Promise<ItemList> {
    return this._get('items', {
      queue: query.queue,
      state: query.state,
      job: query.job || undefined,
      sweep: query.sweep || undefined,
      limit: query.limit,
      offset: query.offset
    });
  }

  item(id: string): Promise<Item> {
    return this._get(itemPath(id));
  }

  logs(id: string, offset: number): Promise<LogPage> {
    return this._get(itemPath(id, 'logs'), { offset });
  }

  /**
   * The executed notebook's path, relative to the server's root dir. A POST: a notebook
   * outside the root dir is copied under it first (GET only looks, and never writes).
   */
  notebook(id: string): Promise<{ path: string }> {
    return this._post(itemPath(id, 'notebook'));
  }

  /**
   * The path of the output file `name` (as the item lists it), relative to the server's root
   * dir. A POST: a file outside the root dir is copied under it first.
   */
  output(id: string, name: string): Promise<{ path: string }> {
    const parts = name.split('/').map(encodeURIComponent).join('/');
    return this._post(itemPath(id, `outputs/${parts}`));
  }

  cancel(id: string): Promise<Item> {
    return this._post(itemPath(id, 'cancel'));
  }

  /**
   * A new item like the finished item `id`. `key` (a fresh one per click by default) makes
   * a repeat of the same request answer the same item: a double click makes one item.
   */
  requeue(id: string, key: string = newIdempotencyKey()): Promise<Item> {
    return this._post(itemPath(id, 'requeue'), undefined, { 'Idempotency-Key': key });
  }

  /** Results rows, the best row and the comparison chart (sorted by `sort` or the sweep). */
  resultsChart(query: ResultsQuery = {}): Promise<ResultsChart> {
    return this._get('charts/results', {
      sweep: query.sweep,
      queue: query.queue,
      sort: query.sort
    });
  }

  /** The item's metric summary and the chart of each metric against step. */
  itemChart(id: string): Promise<ItemChart> {
    return this._get(`charts/${itemPath(id)}`);
  }

  /** Capture the notebook at `path` (relative to the server's root dir) as a job version. */
  createJob(path: string): Promise<Job> {
    return this._post('jobs', { path });
  }

  submit(request: SubmitRequest): Promise<Item> {
    return this._post('items', request);
  }

  private _get<T>(path: string, query?: Record<string, QueryValue>): Promise<T> {
    return this._request(apiUrl(this.baseUrl, path, query), { method: 'GET' });
  }

  private _post<T>(
    path: string,
    body?: unknown,
    headers: Record<string, string> = {}
  ): Promise<T> {
    return this._request(apiUrl(this.baseUrl, path), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body)
    });
  }

  private async _request<T>(url: string, init: RequestInit): Promise<T> {
    let response: Response;
    try {
      response = await this._fetch(url, init);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new LaunchAPIError(`Cannot reach the Jupyter server: ${why}`, 0);
    }
    const text = await response.text();
    let data: unknown = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const message =
        data && typeof data === 'object' && 'message' in data
          ? String((data as { message: unknown }).message)
          : `${response.status} ${response.statusText}`.trim();
      throw new LaunchAPIError(message, response.status);
    }
    return data as T;
  }
}
