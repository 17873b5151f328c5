import { Schedule } from '../src/api';
import { LaunchModel } from '../src/model';
import { nextFiring } from '../src/schedules';
import { FakeServer } from './fakeserver';

function schedule(name: string, extra: Partial<Schedule> = {}): Schedule {
  return {
    name,
    job: 'report:v1',
    queue: 'local',
    cron: '0 9 * * 1-5',
    timezone: 'Europe/Paris',
    overrides: {},
    paused: false,
    state: 'active',
    next_fire_at: '2024-05-03T07:00:00.000Z',
    last_fired_at: null,
    last_item: null,
    items: 0,
    catch_up: false,
    ...extra
  };
}

function server(schedules: Schedule[] | null): FakeServer {
  const made = new FakeServer()
    .json('GET', 'queues', [])
    .json('GET', 'agents', [])
    .json('GET', 'items', { items: [], total: 0 })
    .json('GET', 'meta', {});
  if (schedules !== null) {
    made.on('GET', 'schedules', () => ({ body: schedules }));
  }
  return made;
}

function model(fake: FakeServer): LaunchModel {
  return new LaunchModel({ client: fake.client(), interval: 10_000, standby: 'never', auto: false });
}

describe('schedules in the sidebar model', () => {
  it('reads the schedules with every refresh', async () => {
    const list = [schedule('nightly'), schedule('weekly', { paused: true, state: 'paused' })];
    const fake = server(list);
    const m = model(fake);
    await m.refresh();
    expect(m.schedules.map(s => s.name)).toEqual(['nightly', 'weekly']);
    list.pop();
    await m.refresh();
    expect(m.schedules.map(s => s.name)).toEqual(['nightly']);
    expect(fake.count('GET', 'schedules')).toBe(2);
    m.dispose();
  });

  it('shows none, and no error, from a server without the schedules route', async () => {
    const m = model(server(null));
    await m.refresh();
    expect(m.schedules).toEqual([]);
    expect(m.error).toBeNull();
    m.dispose();
  });

  it('pauses and resumes through their routes, then refreshes', async () => {
    const list = [schedule('nightly')];
    const fake = server(list)
      .on('POST', 'schedules/nightly/pause', () => {
        list[0] = schedule('nightly', { paused: true, state: 'paused' });
        return { body: list[0] };
      })
      .on('POST', 'schedules/nightly/resume', () => ({
        status: 409,
        body: { message: 'schedule nightly is not paused; nothing to resume' }
      }));
    const m = model(fake);
    await m.refresh();
    await m.setSchedulePaused('nightly', true);
    await m.refresh();
    expect(m.schedules[0].paused).toBe(true);
    expect(m.actionError).toBeNull();
    await m.setSchedulePaused('nightly', false);
    expect(m.actionError).toBe('schedule nightly is not paused; nothing to resume');
    m.dispose();
  });

  it('says when a schedule fires next, or that it is paused', () => {
    const now = new Date('2024-05-01T12:00:00Z');
    expect(nextFiring(schedule('a'), now)).toMatch(/^next 2024-05-03 \d\d:00$/);
    expect(nextFiring(schedule('b', { paused: true }), now)).toBe('paused');
  });
});
