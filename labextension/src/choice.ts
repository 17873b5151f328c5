/**
 * What the submit dialog holds and starts with: the server's default queue and priority
 * (from `GET meta`), not whichever queue happens to be listed first.
 */

import { Meta, Queue } from './api';
import { RawValue } from './schema';

export interface SubmitChoice {
  queue: string;
  priority: string;
  raw: Record<string, RawValue>;
}

/**
 * The dialog's first values: the server's default queue when it exists (else the first
 * queue) and its default priority, with no parameter typed yet.
 */
export function initialChoice(
  queues: readonly Pick<Queue, 'name'>[],
  meta: Pick<Meta, 'default_queue' | 'default_priority'>
): SubmitChoice {
  const queue = queues.some(q => q.name === meta.default_queue)
    ? meta.default_queue
    : (queues[0]?.name ?? '');
  return { queue, priority: meta.default_priority, raw: {} };
}
