import { initialChoice } from '../src/choice';
import { META } from './fakeserver';

describe('initialChoice', () => {
  const queues = [{ name: 'local' }, { name: 'gpu' }];

  it("preselects the server's default queue even when it is not listed first", () => {
    expect(initialChoice(queues, META)).toEqual({ queue: 'gpu', priority: 'medium', raw: {} });
  });

  it('falls back to the first queue when the default queue does not exist', () => {
    expect(initialChoice(queues, { ...META, default_queue: 'tpu' }).queue).toBe('local');
    expect(initialChoice([], META).queue).toBe('');
  });

  it("starts with the server's default priority", () => {
    expect(initialChoice(queues, { ...META, default_priority: 'high' }).priority).toBe('high');
  });
});
