/**
 * The sidebar's "Schedules" section: each cron schedule with its job, queue, cron and time
 * zone, next firing (local time) and how many items it made, with pause and resume.
 */

import * as React from 'react';

import { Schedule } from './api';
import { formatTime } from './format';
import { LaunchModel } from './model';

/** When a schedule fires next, as the sidebar says it. */
export function nextFiring(schedule: Schedule, now: Date = new Date()): string {
  return schedule.paused ? 'paused' : `next ${formatTime(schedule.next_fire_at, now)}`;
}

export function ScheduleList({ model }: { model: LaunchModel }): JSX.Element | null {
  const [busy, setBusy] = React.useState<string | null>(null);
  if (model.schedules.length === 0) {
    return null; // no section until there is a schedule: most users have none
  }
  const toggle = (schedule: Schedule) => async () => {
    setBusy(schedule.name);
    try {
      await model.setSchedulePaused(schedule.name, !schedule.paused);
    } finally {
      setBusy(null);
    }
  };
  return (
    <section className="jp-LaunchSidebar-section jp-LaunchSidebar-schedules">
      <h3>Schedules</h3>
      {model.actionError && (
        <div className="jp-LaunchSidebar-error" role="alert">
          {model.actionError}
        </div>
      )}
      <ul>
        {model.schedules.map(schedule => (
          <li
            key={schedule.name}
            className="jp-LaunchSidebar-row jp-LaunchSidebar-schedule"
            data-schedule={schedule.name}
            data-state={schedule.state}
          >
            <div className="jp-LaunchSidebar-line">
              <span className="jp-LaunchSidebar-name">{schedule.name}</span>
              <span>{schedule.job}</span>
              <span className="jp-LaunchSidebar-muted">on {schedule.queue}</span>
              <button
                className="jp-LaunchSidebar-link"
                disabled={busy === schedule.name}
                title={
                  schedule.paused
                    ? `Fire ${schedule.name} again from its next time (no catch-up burst)`
                    : `Stop ${schedule.name} firing`
                }
                onClick={() => void toggle(schedule)()}
              >
                {schedule.paused ? 'Resume' : 'Pause'}
              </button>
            </div>
            <div className="jp-LaunchSidebar-line jp-LaunchSidebar-muted">
              <code title={`cron in ${schedule.timezone}`}>{schedule.cron}</code>
              <span>{schedule.timezone}</span>
              <span className="jp-LaunchSidebar-nextFire">{nextFiring(schedule)}</span>
              <span title={schedule.last_item ? `last item ${schedule.last_item}` : undefined}>
                {schedule.items} item{schedule.items === 1 ? '' : 's'}
              </span>
            </div>
          </li>
        ))}
      </ul>
    </section>
  );
}
