import { IPoll } from '@lumino/polling';

import { Item, LOADING_META, LogPage } from '../src/api';
import { LaunchModel, LogTail, canCancel, canRequeue, hasNotebook } from '../src/model';
import { FakeServer, META, deferred, waitFor } from './fakeserver';

function item(id: string, state: Item['state'], extra: Partial<Item> = {}): Item {
  return {
    id,
    queue: 'local',
    job: 'train:v1',
    state,
    attempt: 1,
    priority: 'medium',
    parameters: {},
    created_at: '2024-05-02T10:00:00Z',
    outputs: [],
    requeued_from: null,
    ...extra
  };
}

/** A log of `chunks` served from byte offsets, the way the server cuts it. */
function logServer(server: FakeServer, id: string, log: { text: string; done: boolean }): void {
  server.on('GET', `items/${id}/logs`, request => {
    const bytes = new TextEncoder().encode(log.text);
    const offset = Number(request.query.get('offset'));
    const rest = bytes.subarray(offset);
    const page: LogPage = {
      text: new TextDecoder().decode(rest),
      next_offset: bytes.length,
      done: log.done
    };
    return { body: page };
  });
}

describe('LogTail', () => {
  it('appends what is new, asking from the byte offset the server gave, not the text length', async () => {
    const server = new FakeServer();
    const log = { text: 'température 21°C\n', done: false };
    logServer(server, '01A', log);
    const tail = new LogTail(server.client(), '01A');

    expect(await tail.fetch()).toBe(true);
    expect(tail.text).toBe('température 21°C\n');
    expect(tail.offset).toBe(19); // bytes of UTF-8 for these 17 characters

    log.text += 'épisode 2 ✓\n';
    expect(await tail.fetch()).toBe(true);
    expect(tail.text).toBe('température 21°C\népisode 2 ✓\n');
    const offsets = server.requests.map(r => r.query.get('offset'));
    expect(offsets).toEqual(['0', '19']);

    expect(await tail.fetch()).toBe(false); // nothing new: no change
    expect(tail.done).toBe(false);
    log.done = true;
    await tail.fetch();
    expect(tail.done).toBe(true);
    const before = server.requests.length;
    await tail.fetch();
    expect(server.requests.length).toBe(before); // a finished log is not asked for again
  });

  it('reads page after page while the server sends full pages', async () => {
    const server = new FakeServer();
    const pages = ['a'.repeat(5), 'b'.repeat(5), ''];
    server.on('GET', 'items/01P/logs', request => {
      const offset = Number(request.query.get('offset'));
      const index = offset / 5;
      return { body: { text: pages[index], next_offset: offset + pages[index].length, done: false } };
    });
    const tail = new LogTail(server.client(), '01P', 1000, 4, 5);
    await tail.fetch();
    expect(tail.text).toBe('aaaaabbbbb');
    expect(server.count('GET', 'items/01P/logs')).toBe(3);
  });

  it('shares one request between concurrent fetches', async () => {
    const server = new FakeServer();
    const answer = deferred<{ body: LogPage }>();
    server.on('GET', 'items/01B/logs', () => answer.promise);
    const tail = new LogTail(server.client(), '01B', 1000, 1);
    const first = tail.fetch();
    const second = tail.fetch();
    answer.resolve({ body: { text: 'once\n', next_offset: 5, done: false } });
    await Promise.all([first, second]);
    expect(server.count('GET', 'items/01B/logs')).toBe(1);
    expect(tail.text).toBe('once\n');
  });

  it('drops an answer that arrives after it was disposed', async () => {
    const server = new FakeServer();
    const answer = deferred<{ body: LogPage }>();
    server.on('GET', 'items/01C/logs', () => answer.promise);
    const tail = new LogTail(server.client(), '01C');
    const pending = tail.fetch();
    tail.dispose();
    answer.resolve({ body: { text: 'late\n', next_offset: 5, done: true } });
    expect(await pending).toBe(false);
    expect(tail.text).toBe('');
    expect(tail.offset).toBe(0);
  });

  it('keeps only the last maxChars characters of a long log', async () => {
    const server = new FakeServer();
    const log = { text: '0123456789', done: false };
    logServer(server, '01D', log);
    const tail = new LogTail(server.client(), '01D', 6);
    await tail.fetch();
    expect(tail.text).toBe('456789');
    expect(tail.truncated).toBe(true);
    log.text += 'ab';
    await tail.fetch();
    expect(tail.text).toBe('6789ab');
  });
});

function overviewServer(items: Item[] = []): FakeServer {
  return new FakeServer()
    .json('GET', 'queues', [
      { name: 'local', runner: 'local', paused: false, max_attempts: 3, timeout: null, created_at: null, counts: { running: 1 } },
      { name: 'gpu', runner: 'docker', paused: false, max_attempts: 3, timeout: null, created_at: null, counts: {} }
    ])
    .json('GET', 'agents', [
      { id: 'ag1', host: 'box', pid: 7, queues: ['local'], max_jobs: 1, started_at: null, heartbeat_at: null, heartbeat_age: 1.5, running: 1 }
    ])
    .on('GET', 'items', request => {
      const queue = request.query.get('queue');
      const shown = queue ? items.filter(i => i.queue === queue) : items;
      return { body: { items: shown, total: shown.length } };
    });
}

function model(server: FakeServer, extra: Partial<ConstructorParameters<typeof LaunchModel>[0]> = {}): LaunchModel {
  return new LaunchModel({ client: server.client(), interval: 10_000, logInterval: 10_000, standby: 'never', auto: false, ...extra });
}

describe('LaunchModel', () => {
  let current: LaunchModel | null = null;
  afterEach(() => {
    current?.dispose();
    current = null;
  });

  it('reads queues, agents and items, and signals the change', async () => {
    const server = overviewServer([item('01A', 'running'), item('01G', 'queued', { queue: 'gpu' })]);
    const m = (current = model(server));
    let changes = 0;
    m.changed.connect(() => changes++);
    await m.refresh();
    expect(m.queues.map(q => q.name)).toEqual(['local', 'gpu']);
    expect(m.agents[0].heartbeat_age).toBe(1.5);
    expect(m.items.map(i => i.id)).toEqual(['01A', '01G']);
    expect(m.total).toBe(2);
    expect(m.loaded).toBe(true);
    expect(m.error).toBeNull();
    expect(changes).toBeGreaterThan(0);
    expect(server.requests.find(r => r.path === 'items')?.query.get('limit')).toBe('100');
  });

  it("lists one queue's items once that queue is selected", async () => {
    const server = overviewServer([item('01A', 'running'), item('01G', 'queued', { queue: 'gpu' })]);
    const m = (current = model(server));
    await m.selectQueue('gpu');
    expect(m.items.map(i => i.id)).toEqual(['01G']);
    expect(server.requests.filter(r => r.path === 'items').pop()?.query.get('queue')).toBe('gpu');
    await m.selectQueue(null);
    expect(m.items.map(i => i.id)).toEqual(['01A', '01G']);
  });

  it('tails the selected item and stops reading once its log is done', async () => {
    const items = [item('01A', 'running')];
    const server = overviewServer(items);
    const log = { text: 'step 1\n', done: false };
    logServer(server, '01A', log);
    server.on('GET', 'items/01A', () => ({ body: items[0] }));
    const m = (current = model(server, { logInterval: 10 }));
    await m.selectItem('01A');
    expect(m.item?.state).toBe('running');
    await waitFor(() => m.log?.text === 'step 1\n', 3000, 'the first log line');
    log.text += 'step 2\n';
    await waitFor(() => m.log?.text === 'step 1\nstep 2\n', 3000, 'the second log line');

    items[0] = item('01A', 'succeeded', { duration: 3 });
    log.done = true;
    await m.refresh();
    expect(m.item?.state).toBe('succeeded');
    await waitFor(() => m.log?.done === true, 3000, 'the log to be done');
    const reads = server.count('GET', 'items/01A/logs');
    await new Promise(resolve => setTimeout(resolve, 60));
    expect(server.count('GET', 'items/01A/logs')).toBe(reads);
  });

  it('forgets the log of an item that is no longer selected', async () => {
    const server = overviewServer([item('01A', 'running'), item('01B', 'running')]);
    server.json('GET', 'items/01A', item('01A', 'running')).json('GET', 'items/01B', item('01B', 'running'));
    const slow = deferred<{ body: LogPage }>();
    server.on('GET', 'items/01A/logs', () => slow.promise);
    logServer(server, '01B', { text: 'from B\n', done: false });
    const m = (current = model(server, { logInterval: 10 }));
    await m.selectItem('01A');
    await waitFor(() => server.count('GET', 'items/01A/logs') === 1);
    await m.selectItem('01B');
    slow.resolve({ body: { text: 'from A\n', next_offset: 7, done: false } });
    await waitFor(() => m.log?.text === 'from B\n', 3000, "B's log");
    expect(m.log?.itemId).toBe('01B');
    expect(m.log?.text).not.toContain('from A');
  });

  it('goes back to the list when the selected item was deleted', async () => {
    const server = overviewServer([]);
    server.json('GET', 'items/01X', { message: 'item 01X does not exist' }, 404);
    server.json('GET', 'items/01X/logs', { message: 'item 01X does not exist' }, 404);
    const m = (current = model(server));
    await m.selectItem('01X');
    expect(m.selectedItemId).toBeNull();
    expect(m.log).toBeNull();
    expect(m.error).toBe('item 01X does not exist');
    await m.refresh();
    expect(m.error).toBeNull();
  });

  it('shows every queue again when the selected queue was deleted', async () => {
    const server = overviewServer([item('01A', 'queued')]);
    server.on('GET', 'items', request =>
      request.query.get('queue') === 'old'
        ? { status: 404, body: { message: "queue 'old' does not exist" } }
        : { body: { items: [item('01A', 'queued')], total: 1 } }
    );
    const m = (current = model(server));
    await m.selectQueue('old');
    expect(m.selectedQueue).toBeNull();
    expect(m.error).toBe("queue 'old' does not exist");
    await m.refresh();
    expect(m.items.map(i => i.id)).toEqual(['01A']);
  });

  it('lists nothing with the reason for a job filter naming no job, keeping the queue', async () => {
    const server = overviewServer([item('01A', 'queued')]);
    server.on('GET', 'items', request =>
      request.query.get('job') === 'trian'
        ? { status: 404, body: { message: "job 'trian' does not exist (jobs: train). did you mean 'train'?" } }
        : { body: { items: [item('01A', 'queued')], total: 1 } }
    );
    const m = (current = model(server));
    await m.selectQueue('local');
    await m.setFilter({ job: 'trian' });
    expect(m.selectedQueue).toBe('local');
    expect(m.error).toBeNull();
    expect(m.items).toEqual([]);
    expect(m.filterNote).toContain("did you mean 'train'?");
    await m.setFilter({ job: null });
    expect(m.items.map(i => i.id)).toEqual(['01A']);
    expect(m.filterNote).toBeNull();
  });

  it('requeues a finished item and selects the new one', async () => {
    const items = [item('01A', 'failed')];
    const server = overviewServer(items);
    const copy = item('01N', 'queued', { requeued_from: '01A' });
    server.on('POST', 'items/01A/requeue', () => {
      items.unshift(copy);
      return { status: 201, body: copy };
    });
    server.json('GET', 'items/01N', copy);
    logServer(server, '01N', { text: '', done: false });
    const m = (current = model(server));
    await m.refresh();
    const made = await m.requeue('01A');
    expect(made?.id).toBe('01N');
    expect(m.selectedItemId).toBe('01N');
    expect(m.item?.requeued_from).toBe('01A');
    expect(m.items[0].id).toBe('01N');
  });

  it("keeps an action's error for the detail view without failing the refresh", async () => {
    const server = overviewServer([item('01A', 'succeeded')]);
    server.json('POST', 'items/01A/cancel', { message: 'item 01A is already succeeded' }, 409);
    const m = (current = model(server));
    await m.cancel('01A');
    expect(m.actionError).toBe('item 01A is already succeeded');
    expect(m.error).toBeNull();
  });

  it('backs off while the server fails, within the maximum, and recovers', async () => {
    const server = overviewServer([]);
    let failing = true;
    const queues = server.routes.get('GET queues')!;
    server.on('GET', 'queues', request =>
      failing ? { status: 503, body: { message: 'the store cannot be opened' } } : queues(request)
    );
    const m = (current = model(server, { interval: 5, maxInterval: 200, auto: true }));
    const states: IPoll.State<any, any, any>[] = [];
    m.poll.ticked.connect((_, state) => states.push({ ...state }));
    await waitFor(() => states.filter(s => s.phase === 'rejected').length >= 6, 5000, 'six failures');
    const rejected = states.filter(s => s.phase === 'rejected').map(s => s.interval);
    expect(Math.max(...rejected)).toBeGreaterThan(5);
    expect(Math.max(...rejected)).toBeLessThanOrEqual(200);
    expect(m.error).toBe('the store cannot be opened');

    failing = false;
    await waitFor(() => states.some(s => s.phase === 'reconnected'), 5000, 'the reconnect');
    expect(m.error).toBeNull();
    expect(m.queues.length).toBe(2);
    const reconnected = states.find(s => s.phase === 'reconnected')!;
    expect(reconnected.interval).toBe(5); // back to the normal pace
  });

  it("reads the server's meta with the first refresh, and only once", async () => {
    const server = overviewServer([]).json('GET', 'meta', META);
    const m = (current = model(server));
    expect(m.meta).toBe(LOADING_META);
    expect(m.metaLoaded).toBe(false);
    await m.refresh();
    expect(m.metaLoaded).toBe(true);
    expect(m.meta.default_queue).toBe('gpu');
    expect(m.meta.lease_ttl).toBe(10);
    expect(m.meta.symbols.queued).toBe('Q');
    await m.refresh();
    await m.loadMeta();
    expect(server.count('GET', 'meta')).toBe(1);
  });

  it('keeps the loading fallback while meta fails, shows the rest, and asks again', async () => {
    let failing = true;
    const server = overviewServer([item('01A', 'queued')]).on('GET', 'meta', () =>
      failing ? { status: 503, body: { message: 'the store cannot be opened' } } : { body: META }
    );
    const m = (current = model(server));
    await m.refresh();
    expect(m.items.map(i => i.id)).toEqual(['01A']);
    expect(m.error).toBeNull();
    expect(m.meta).toBe(LOADING_META);
    failing = false;
    await m.refresh();
    expect(m.meta.default_queue).toBe('gpu');
    expect(server.count('GET', 'meta')).toBe(2);
  });

  it('shares one meta request between concurrent callers', async () => {
    const server = overviewServer([]);
    const answer = deferred<{ body: unknown }>();
    server.on('GET', 'meta', () => answer.promise);
    const m = (current = model(server));
    const first = m.loadMeta();
    const second = m.loadMeta();
    answer.resolve({ body: META });
    expect((await first).default_queue).toBe('gpu');
    expect(await second).toBe(await first);
    expect(server.count('GET', 'meta')).toBe(1);
  });

  it('asks nothing while in standby', async () => {
    const server = overviewServer([]);
    const m = (current = model(server, { interval: 5, standby: () => true, auto: true }));
    await new Promise(resolve => setTimeout(resolve, 60));
    expect(server.requests).toEqual([]);
    expect(m.loaded).toBe(false);
  });
});

describe('item actions', () => {
  it('offers cancel until finished or already asked, requeue once finished', () => {
    expect(canCancel(item('1', 'running'), META)).toBe(true);
    expect(canCancel(item('1', 'running', { cancel_requested: true }), META)).toBe(false);
    expect(canCancel(item('1', 'failed'), META)).toBe(false);
    expect(canRequeue(item('1', 'queued'), META)).toBe(false);
    expect(canRequeue(item('1', 'cancelled'), META)).toBe(true);
  });

  it('offers the executed notebook only when the item kept one', () => {
    expect(hasNotebook(item('1', 'succeeded'))).toBe(false);
    const outputs: Item['outputs'] = [{ name: 'train.ipynb', path: '/r/train.ipynb', size: 10, kind: 'notebook' }];
    expect(hasNotebook(item('1', 'succeeded', { outputs }))).toBe(true);
  });
});
