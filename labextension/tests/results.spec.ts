import { ResultRow, ResultsChart } from '../src/api';
import { ResultsModel, formatCell, resultColumns, sortRows } from '../src/resultsModel';
import { FakeServer } from './fakeserver';

function row(id: string, lr: number | null, acc: number | undefined, opt = 'adam'): ResultRow {
  return {
    id,
    state: 'succeeded',
    job: 'train:v1',
    parameters: lr === null ? { opt } : { lr, opt },
    metrics: acc === undefined ? {} : { acc },
    duration: 2
  };
}

const ROWS = [row('a', 0.1, 0.8), row('b', 0.01, 0.9, 'sgd'), row('c', 0.001, undefined), row('d', null, 0.7)];

describe('results table', () => {
  it('has id, state, job, each varying parameter, each metric and duration as columns', () => {
    const names = resultColumns(ROWS, ['acc', 'loss']).map(c => `${c.kind}:${c.name}`);
    expect(names).toEqual([
      'id:id', 'state:state', 'job:job', 'parameter:lr', 'parameter:opt', 'metric:acc', 'metric:loss',
      'duration:duration'
    ]);
  });

  it('sorts numbers by value and text as text, rows without a value last either way', () => {
    const acc = { kind: 'metric' as const, name: 'acc' };
    expect(sortRows(ROWS, acc, true).map(r => r.id)).toEqual(['b', 'a', 'd', 'c']);
    expect(sortRows(ROWS, acc, false).map(r => r.id)).toEqual(['d', 'a', 'b', 'c']);
    const lr = { kind: 'parameter' as const, name: 'lr' };
    expect(sortRows(ROWS, lr, false).map(r => r.id)).toEqual(['c', 'b', 'a', 'd']);
    const opt = { kind: 'parameter' as const, name: 'opt' };
    expect(sortRows(ROWS, opt, true).map(r => r.id)).toEqual(['b', 'a', 'c', 'd']);
  });

  it('shows numbers with six significant digits and durations as durations', () => {
    expect(formatCell(0.123456789, { kind: 'metric', name: 'acc' })).toBe('0.123457');
    expect(formatCell(3, { kind: 'metric', name: 'acc' })).toBe('3');
    expect(formatCell(undefined, { kind: 'metric', name: 'acc' })).toBe('');
    expect(formatCell([1, 2], { kind: 'parameter', name: 'w' })).toBe('[1,2]');
  });
});

describe('ResultsModel', () => {
  it('sorts a metric through the server (max, then min) and other columns locally', async () => {
    const server = new FakeServer();
    const answer = (sort: string | null): ResultsChart => ({
      rows: sort === 'acc:min' ? [...ROWS].reverse() : ROWS,
      best: sort === 'acc:min' ? 'd' : 'b',
      metric: sort ? 'acc' : 'acc',
      goal: sort === 'acc:min' ? 'minimize' : 'maximize',
      metrics: ['acc'],
      spec: { mark: 'point' }
    });
    server.on('GET', 'charts/results', request => ({ body: answer(request.query.get('sort')) }));
    const model = new ResultsModel(server.client(), { sweep: 'S1' }, () => true);
    let changes = 0;
    model.changed.connect(() => changes++);
    await model.refresh();
    expect(model.answer?.best).toBe('b');
    expect(server.requests[0].query.get('sweep')).toBe('S1');
    await model.refresh(); // the same answer: no redraw
    expect(changes).toBe(1);

    await model.sortBy({ kind: 'metric', name: 'acc' }); // the sweep maximizes: now min first
    expect(server.requests[server.requests.length - 1].query.get('sort')).toBe('acc:min');
    expect(model.answer?.best).toBe('d');
    await model.sortBy({ kind: 'metric', name: 'acc' });
    expect(server.requests[server.requests.length - 1].query.get('sort')).toBe('acc:max');

    await model.sortBy({ kind: 'parameter', name: 'lr' });
    expect(model.rows.map(r => r.id)).toEqual(['c', 'b', 'a', 'd']);
    await model.sortBy({ kind: 'parameter', name: 'lr' });
    expect(model.rows.map(r => r.id)).toEqual(['a', 'b', 'c', 'd']);
    model.dispose();
  });

  it('keeps the last answer and says why when the server fails', async () => {
    const server = new FakeServer();
    server.json('GET', 'charts/results', { message: 'no sweep 01X: list them with sweeps' }, 404);
    const model = new ResultsModel(server.client(), { sweep: '01X' }, () => true);
    await expect(model.refresh()).rejects.toThrow('no sweep 01X');
    expect(model.error).toContain('no sweep 01X');
    model.dispose();
  });
});
