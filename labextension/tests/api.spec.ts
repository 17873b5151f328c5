import { LaunchAPIError, LaunchClient, apiUrl, isTerminal, itemPath } from '../src/api';
import { BASE, FakeServer, META } from './fakeserver';

describe('apiUrl', () => {
  it('puts paths under launch/api whether or not the base url ends with a slash', () => {
    expect(apiUrl('http://h/base/', 'queues')).toBe('http://h/base/launch/api/queues');
    expect(apiUrl('http://h/base', '/queues')).toBe('http://h/base/launch/api/queues');
  });

  it('leaves out empty and null query values and joins lists with commas', () => {
    const url = apiUrl('http://h/', 'items', {
      queue: null,
      state: ['queued', 'running'],
      limit: 50,
      offset: 0,
      other: ''
    });
    expect(url).toBe('http://h/launch/api/items?state=queued%2Crunning&limit=50&offset=0');
  });

  it('encodes item ids in paths', () => {
    expect(itemPath('a/b c', 'logs')).toBe('items/a%2Fb%20c/logs');
    expect(itemPath('01HX')).toBe('items/01HX');
  });
});

describe('LaunchClient', () => {
  it('sends the log offset and the queue filter as query arguments', async () => {
    const server = new FakeServer()
      .json('GET', 'items/01A/logs', { text: 'x', next_offset: 11, done: false })
      .json('GET', 'items', { items: [], total: 0 });
    const client = server.client();
    await client.logs('01A', 10);
    await client.items({ queue: 'gpu', limit: 20 });
    expect(server.requests[0].query.get('offset')).toBe('10');
    expect(server.requests[1].query.get('queue')).toBe('gpu');
    expect(server.requests[1].query.get('limit')).toBe('20');
  });

  it('posts JSON bodies for capture and submit, and no body for cancel', async () => {
    const server = new FakeServer()
      .json('POST', 'jobs', { ref: 'train:v1' }, 201)
      .json('POST', 'items', { id: '01B' }, 201)
      .json('POST', 'items/01B/cancel', { id: '01B', state: 'cancelled' });
    const client = server.client();
    await client.createJob('work/train.ipynb');
    await client.submit({ job: 'train:v1', queue: 'local', parameters: { lr: 0.1 }, priority: 'high' });
    await client.cancel('01B');
    expect(server.requests.map(r => r.body)).toEqual([
      { path: 'work/train.ipynb' },
      { job: 'train:v1', queue: 'local', parameters: { lr: 0.1 }, priority: 'high' },
      undefined
    ]);
  });

  it('posts for an output file with its name encoded segment by segment', async () => {
    const server = new FakeServer().json('POST', 'items/01D/outputs/sub dir/a#b?.txt', {
      path: 'launch-runs/01D/output/sub dir/a#b?.txt'
    });
    const where = await server.client().output('01D', 'sub dir/a#b?.txt');
    expect(where.path).toBe('launch-runs/01D/output/sub dir/a#b?.txt');
    expect(server.count('POST', 'items/01D/outputs/sub dir/a#b?.txt')).toBe(1);
  });

  it("raises the server's message with the status code", async () => {
    const server = new FakeServer().json(
      'POST',
      'items/01C/requeue',
      { message: 'item 01C is still running; requeue it once it has finished' },
      409
    );
    const error = await server.client().requeue('01C').catch(e => e);
    expect(error).toBeInstanceOf(LaunchAPIError);
    expect(error.status).toBe(409);
    expect(error.message).toBe('item 01C is still running; requeue it once it has finished');
  });

  it('says the server cannot be reached when the request itself fails', async () => {
    const client = new LaunchClient(BASE, () => Promise.reject(new TypeError('Failed to fetch')));
    const error = await client.queues().catch(e => e);
    expect(error).toBeInstanceOf(LaunchAPIError);
    expect(error.status).toBe(0);
    expect(error.message).toContain('Cannot reach the Jupyter server: Failed to fetch');
  });

  it('falls back to the status line when an error has no JSON message', async () => {
    const client = new LaunchClient(BASE, async () => new Response('<html>', { status: 502, statusText: 'Bad Gateway' }));
    await expect(client.agents()).rejects.toThrow('502 Bad Gateway');
  });
});

describe('isTerminal', () => {
  it("knows which states never change again from the server's meta", () => {
    expect(['succeeded', 'failed', 'cancelled'].every(s => isTerminal(s, META))).toBe(true);
    expect(['queued', 'leased', 'running'].some(s => isTerminal(s, META))).toBe(false);
    expect(isTerminal('failed', { terminal: ['succeeded'] })).toBe(false);
  });
});
