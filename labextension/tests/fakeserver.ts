/**
 * A stand-in for the launch REST API: routes answer from the test's data, every request is
 * recorded, and answers can be held back to test ordering.
 */

import { Fetcher, LaunchClient, Meta } from '../src/api';

/**
 * A `GET meta` answer whose values differ from LaunchConfig's defaults (default queue `gpu`,
 * a 10 s lease ttl, letters as symbols), so a test sees they come from the server.
 */
export const META: Meta = {
  states: ['queued', 'leased', 'running', 'succeeded', 'failed', 'cancelled'],
  terminal: ['succeeded', 'failed', 'cancelled'],
  symbols: { queued: 'Q', leased: 'L', running: 'R', succeeded: 'S', failed: 'F', cancelled: 'C' },
  colours: { queued: '#6b7280', leased: '#2563eb', running: '#2563eb', succeeded: '#16a34a', failed: '#dc2626', cancelled: '#a16207' },
  priorities: ['critical', 'high', 'medium', 'low'],
  default_priority: 'medium',
  default_queue: 'gpu',
  lease_ttl: 10,
  runners: { local: 'a process on this machine' }
};

export interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
}

export type Route = (request: Recorded) => { status?: number; body: unknown } | Promise<{ status?: number; body: unknown }>;

export const BASE = 'http://localhost:8888/lab-base/';

export class FakeServer {
  readonly requests: Recorded[] = [];
  readonly routes = new Map<string, Route>();

  /** Answer `METHOD path` (path under launch/api, without query) with `route`. */
  on(method: string, path: string, route: Route): this {
    this.routes.set(`${method} ${path}`, route);
    return this;
  }

  /** Answer with a fixed JSON body. */
  json(method: string, path: string, body: unknown, status = 200): this {
    return this.on(method, path, () => ({ status, body }));
  }

  readonly fetch: Fetcher = async (url, init) => {
    const parsed = new URL(url);
    const prefix = new URL(BASE).pathname + 'launch/api/';
    if (!parsed.pathname.startsWith(prefix)) {
      throw new Error(`request outside the API: ${url}`);
    }
    const request: Recorded = {
      method: init.method ?? 'GET',
      path: decodeURIComponent(parsed.pathname.slice(prefix.length)),
      query: parsed.searchParams,
      body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined
    };
    this.requests.push(request);
    const route = this.routes.get(`${request.method} ${request.path}`);
    if (!route) {
      return new Response(JSON.stringify({ message: `no route ${request.path}` }), { status: 404 });
    }
    const { status = 200, body } = await route(request);
    return new Response(JSON.stringify(body), { status });
  };

  client(): LaunchClient {
    return new LaunchClient(BASE, this.fetch);
  }

  count(method: string, path: string): number {
    return this.requests.filter(r => r.method === method && r.path === path).length;
  }
}

/** Resolve when `condition()` holds; fail after `timeout` ms. */
export async function waitFor(condition: () => boolean, timeout = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise(resolve => setTimeout(resolve, 5));
  }
}

/** A promise with its resolve function, to hold an answer back. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>(r => (resolve = r));
  return { promise, resolve };
}
