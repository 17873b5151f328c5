import { LaunchClient, newIdempotencyKey } from '../src/api';

/** A client whose requests are kept (url, method, headers) and answered `{}`. */
function recording(): { client: LaunchClient; seen: { url: string; init: RequestInit }[] } {
  const seen: { url: string; init: RequestInit }[] = [];
  const client = new LaunchClient('http://h/', async (url, init) => {
    seen.push({ url, init });
    return new Response(JSON.stringify({ id: '01N', path: 'launch-runs/01A/nb.ipynb' }), {
      status: 200
    });
  });
  return { client, seen };
}

function header(init: RequestInit, name: string): string | undefined {
  return (init.headers as Record<string, string>)[name];
}

describe('requeue idempotency', () => {
  it('sends a fresh Idempotency-Key per requeue, and the given one on a retry', async () => {
    const { client, seen } = recording();
    await client.requeue('01A');
    await client.requeue('01A');
    await client.requeue('01A', 'retry-of-click-1');
    const keys = seen.map(r => header(r.init, 'Idempotency-Key'));
    expect(keys[0]).toMatch(/^[!-~]{1,255}$/);
    expect(keys[1]).not.toBe(keys[0]);
    expect(keys[2]).toBe('retry-of-click-1');
    expect(header(seen[0].init, 'Content-Type')).toBe('application/json');
  });

  it('makes keys even where crypto.randomUUID is missing (no secure context)', () => {
    const saved = crypto.randomUUID;
    try {
      Object.defineProperty(crypto, 'randomUUID', { value: undefined, configurable: true });
      const a = newIdempotencyKey();
      expect(a).toMatch(/^[0-9a-f]{32}$/);
      expect(newIdempotencyKey()).not.toBe(a);
    } finally {
      Object.defineProperty(crypto, 'randomUUID', { value: saved, configurable: true });
    }
  });
});

describe('opening the executed notebook', () => {
  it('POSTs, since the server may copy it under the root dir (a GET never writes)', async () => {
    const { client, seen } = recording();
    expect(await client.notebook('01A')).toEqual({ id: '01N', path: 'launch-runs/01A/nb.ipynb' });
    expect(seen[0].init.method).toBe('POST');
    expect(seen[0].url).toBe('http://h/launch/api/items/01A/notebook');
  });
});
