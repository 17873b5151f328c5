import { Item } from '../src/api';
import {
  agentHealth,
  cellProgress,
  formatAge,
  formatDuration,
  formatParameters,
  formatPriority,
  formatTime,
  itemDuration,
  shortId
} from '../src/format';
import { META } from './fakeserver';

describe('formatting', () => {
  it('words durations', () => {
    expect(formatDuration(null)).toBe('—');
    expect(formatDuration(0.42)).toBe('0.4 s');
    expect(formatDuration(42)).toBe('42 s');
    expect(formatDuration(185)).toBe('3 min 05 s');
    expect(formatDuration(7440)).toBe('2 h 04 min');
  });

  it('words heartbeat ages and health', () => {
    expect(formatAge(0.2)).toBe('just now');
    expect(formatAge(12.7)).toBe('12 s ago');
    expect(formatAge(125)).toBe('2 min ago');
    expect(agentHealth(5, 30)).toBe('ok');
    expect(agentHealth(45, 30)).toBe('late');
    expect(agentHealth(200, 30)).toBe('lost');
    // late after one of the server's lease ttls, lost after three
    expect(agentHealth(9, META.lease_ttl)).toBe('ok');
    expect(agentHealth(12, META.lease_ttl)).toBe('late');
    expect(agentHealth(31, META.lease_ttl)).toBe('lost');
  });

  it('counts a running item up from its start', () => {
    const running = {
      state: 'running',
      started_at: '2024-05-02T10:00:00Z',
      duration: null
    } as unknown as Item;
    expect(itemDuration(running, META, Date.parse('2024-05-02T10:00:30Z'))).toBe(30);
    expect(itemDuration({ ...running, state: 'queued', started_at: null }, META)).toBeNull();
    expect(itemDuration({ ...running, state: 'succeeded', duration: 12 }, META)).toBe(12);
    expect(itemDuration({ ...running, state: 'failed' }, META)).toBeNull(); // finished, no duration
  });

  it('shows parameters as JSON, cut to a length', () => {
    expect(formatParameters({ lr: 0.01, opt: 'adam' })).toBe('lr=0.01, opt="adam"');
    expect(formatParameters({ text: 'x'.repeat(100) }, 20)).toHaveLength(20);
  });

  it('words priorities and shortens ids', () => {
    expect(formatPriority(2, META)).toBe('high');
    expect(formatPriority(0, META)).toBe('low');
    expect(formatPriority(3, META)).toBe('critical');
    expect(formatPriority(9, META)).toBe('9');
    expect(formatPriority('low', META)).toBe('low');
    expect(shortId('01HXYZABCDEFGHJKMNPQRSTVWX')).toBe('QRSTVWX'.padStart(8, 'P'));
    expect(shortId('short')).toBe('short');
  });

  it('shows times of today as a clock, others with the date', () => {
    const now = new Date(2024, 4, 2, 15, 0, 0);
    expect(formatTime(new Date(2024, 4, 2, 14, 3, 9).toISOString(), now)).toBe('14:03:09');
    expect(formatTime(new Date(2024, 3, 30, 8, 5, 0).toISOString(), now)).toBe('2024-04-30 08:05');
    expect(formatTime(null)).toBe('—');
  });

  it('shows the running cell of a notebook item with its elapsed time', () => {
    const started = Date.parse('2026-01-01T00:00:00Z');
    const item = {
      state: 'running',
      started_at: '2026-01-01T00:00:00Z',
      progress: { cell: 4, cells: 6, cell_started_at: null, source: 'import os' }
    } as unknown as Item;
    expect(cellProgress(item, started + 31_000)).toEqual({ label: 'cell 4 of 6 · 31 s', done: 0.5 });
    expect(cellProgress({ ...item, progress: null })).toBeNull();
  });
});
