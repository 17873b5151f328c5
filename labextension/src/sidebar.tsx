/**
 * The Launch sidebar: queues with their counts, cron schedules, a queue's items, an item's
 * detail with its live log, and the agents with their heartbeats. A view over LaunchModel; it holds no data itself.
 */

import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { Agent, Item, LaunchClient, Meta, Queue, ResultsQuery, isTerminal } from './api';
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
} from './format';
import { launchIcon } from './icon';
import { LaunchModel, canCancel, canRequeue, hasNotebook } from './model';
import { ItemMetrics } from './results';
import { ScheduleList } from './schedules';

export interface LaunchSidebarOptions {
  client: LaunchClient;
  /** Open a notebook path (relative to the server's root dir) in Lab. */
  openNotebook: (path: string, itemId?: string) => Promise<unknown>;
  /** Open the submit dialog for the current notebook, when there is one. */
  submitNotebook?: () => Promise<unknown>;
  /** Open a Results view (sortable table and chart) of a sweep or a queue. */
  openResults?: (query: ResultsQuery) => Promise<unknown>;
}

/** The left-sidebar panel; it polls only while shown (and the page is visible). */
export class LaunchSidebar extends ReactWidget {
  constructor(options: LaunchSidebarOptions) {
    super();
    this.id = 'launch-jupyter-sidebar';
    this.addClass('jp-LaunchSidebar');
    this.title.icon = launchIcon;
    this.title.caption = 'Launch: queues, runs and agents';
    this._openNotebook = options.openNotebook;
    this._submitNotebook = options.submitNotebook;
    this._openResults = options.openResults;
    this.model = new LaunchModel({
      client: options.client,
      standby: () => (this.isVisible ? 'when-hidden' : true)
    });
  }

  readonly model: LaunchModel;

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.model.refresh();
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => (
          <SidebarView
            model={this.model}
            openNotebook={this._openNotebook}
            submitNotebook={this._submitNotebook}
            openResults={this._openResults}
          />
        )}
      </UseSignal>
    );
  }

  private readonly _openNotebook: (path: string, itemId?: string) => Promise<unknown>;
  private readonly _submitNotebook?: () => Promise<unknown>;
  private readonly _openResults?: (query: ResultsQuery) => Promise<unknown>;
}

interface ViewProps {
  model: LaunchModel;
  openNotebook: (path: string, itemId?: string) => Promise<unknown>;
  submitNotebook?: () => Promise<unknown>;
  openResults?: (query: ResultsQuery) => Promise<unknown>;
}

function SidebarView(props: ViewProps): JSX.Element {
  const { model } = props;
  return (
    <div className="jp-LaunchSidebar-content">
      <header className="jp-LaunchSidebar-header">
        <h2 className="jp-LaunchSidebar-title">Launch</h2>
        {props.submitNotebook && (
          <button
            className="jp-LaunchSidebar-button"
            title="Submit the current notebook to a queue"
            onClick={() => void props.submitNotebook?.()}
          >
            Submit…
          </button>
        )}
        <button
          className="jp-LaunchSidebar-button"
          title="Refresh now"
          onClick={() => void model.refresh()}
        >
          Refresh
        </button>
      </header>
      {model.error && (
        <div className="jp-LaunchSidebar-error" role="alert">
          {model.error}
        </div>
      )}
      {model.selectedItemId !== null ? (
        <ItemDetail {...props} />
      ) : (
        <>
          <QueueList model={model} openResults={props.openResults} />
          <ScheduleList model={model} />
          <ItemList model={model} />
          <AgentList agents={model.agents} meta={model.meta} />
        </>
      )}
    </div>
  );
}

/** A state's symbol from the server's meta (none while it loads, `?` for an unknown state). */
function stateSymbol(meta: Readonly<Meta>, state: string): string {
  const known = (meta.states as readonly string[]).includes(state);
  return meta.symbols[state] ?? (known ? '' : '?');
}

function StateBadge({ state, meta }: { state: string; meta: Readonly<Meta> }): JSX.Element {
  return (
    <span className={`jp-LaunchState jp-LaunchState-${state}`} data-state={state}>
      <span className="jp-LaunchState-symbol" aria-hidden="true">
        {stateSymbol(meta, state)}
      </span>
      {state}
    </span>
  );
}

function Counts(props: { counts: Record<string, number>; meta: Readonly<Meta> }): JSX.Element {
  const { counts, meta } = props;
  const shown = meta.states.filter(s => (counts[s] ?? 0) > 0);
  return (
    <span className="jp-LaunchSidebar-counts">
      {shown.length === 0 && <span className="jp-LaunchSidebar-muted">empty</span>}
      {shown.map(s => (
        <span
          key={s}
          className={`jp-LaunchCount jp-LaunchState-${s}`}
          data-state={s}
          title={`${counts[s]} ${s}`}
        >
          {`${stateSymbol(meta, s)} ${counts[s]}`.trim()}
        </span>
      ))}
    </span>
  );
}

function QueueList({
  model,
  openResults
}: {
  model: LaunchModel;
  openResults?: (query: ResultsQuery) => Promise<unknown>;
}): JSX.Element {
  return (
    <section className="jp-LaunchSidebar-section jp-LaunchSidebar-queues">
      <h3>Queues</h3>
      {model.loaded && model.queues.length === 0 && (
        <p className="jp-LaunchSidebar-muted">
          No queues yet. Create one with <code>%launch queue create NAME</code>.
        </p>
      )}
      <ul>
        {model.queues.map((queue: Queue) => (
          <li
            key={queue.name}
            className={
              'jp-LaunchSidebar-row jp-LaunchSidebar-queue' +
              (queue.name === model.selectedQueue ? ' jp-mod-selected' : '')
            }
            data-queue={queue.name}
            title={`Show the items of queue ${queue.name}`}
            onClick={() =>
              void model.selectQueue(queue.name === model.selectedQueue ? null : queue.name)
            }
          >
            <span className="jp-LaunchSidebar-name">{queue.name}</span>
            <span className="jp-LaunchSidebar-muted">
              {queue.runner}
              {queue.paused ? ' · paused' : ''}
            </span>
            <Counts counts={queue.counts} meta={model.meta} />
            {openResults && (
              <button
                className="jp-LaunchSidebar-link jp-LaunchSidebar-results"
                title={`Results of queue ${queue.name}: sortable table and chart`}
                onClick={event => {
                  event.stopPropagation();
                  void openResults({ queue: queue.name });
                }}
              >
                Results
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}

function ItemList({ model }: { model: LaunchModel }): JSX.Element {
  const now = Date.now();
  return (
    <section className="jp-LaunchSidebar-section jp-LaunchSidebar-items">
      <h3>
        Items{model.selectedQueue ? ` on ${model.selectedQueue}` : ''}
        <span className="jp-LaunchSidebar-muted"> ({model.total})</span>
        {model.selectedQueue && (
          <button className="jp-LaunchSidebar-link" onClick={() => void model.selectQueue(null)}>
            all queues
          </button>
        )}
      </h3>
      <ItemFilter model={model} />
      {model.loaded && model.items.length === 0 && (
        <p className="jp-LaunchSidebar-muted">
          {model.filter.state || model.filter.job ? 'No item matches.' : 'Nothing submitted yet.'}
          {model.filterNote && (
            <span className="jp-LaunchSidebar-filterNote"> {model.filterNote}</span>
          )}
        </p>
      )}
      <ul>
        {model.items.map((item: Item, index: number) => (
          <React.Fragment key={item.id}>
          {item.sweep_id && item.sweep_id !== model.items[index - 1]?.sweep_id && (
            <li className="jp-LaunchSidebar-sweep" data-sweep={item.sweep_id}>
              sweep {item.sweep_id}
            </li>
          )}
          <li
            key={item.id}
            className="jp-LaunchSidebar-row jp-LaunchSidebar-item"
            data-item-id={item.id}
            data-state={item.state}
            title={`Item ${item.id}: show its detail and log`}
            onClick={() => void model.selectItem(item.id)}
          >
            <div className="jp-LaunchSidebar-line">
              <StateBadge state={item.state} meta={model.meta} />
              <span className="jp-LaunchSidebar-name">{item.job}</span>
              <span className="jp-LaunchSidebar-muted">
                {formatDuration(itemDuration(item, model.meta, now))}
              </span>
            </div>
            <ProgressBar item={item} now={now} />
            <div className="jp-LaunchSidebar-line jp-LaunchSidebar-muted">
              <span>{shortId(item.id)}</span>
              {!model.selectedQueue && <span>{item.queue}</span>}
              <span>{formatPriority(item.priority, model.meta)}</span>
            </div>
            {Object.keys(item.overrides ?? {}).length > 0 && (
              <div
                className="jp-LaunchSidebar-params"
                title={formatParameters(item.parameters)}
              >
                {Object.entries(item.overrides ?? {}).map(([name, value]) => (
                  <span key={name} className="jp-LaunchSidebar-param">
                    {`${name}=${JSON.stringify(value)}`}
                  </span>
                ))}
              </div>
            )}
            {item.waiting && (
              <div className="jp-LaunchSidebar-waiting" role="status" title={item.waiting}>
                waiting: {item.waiting.split(';')[0]}
              </div>
            )}
          </li>
          </React.Fragment>
        ))}
      </ul>
    </section>
  );
}

/** `532 B`, `4.1 kB`, `2.0 MB`. */
function formatBytes(size: number): string {
  if (size < 1000) {
    return `${size} B`;
  }
  return size < 1e6 ? `${(size / 1e3).toFixed(1)} kB` : `${(size / 1e6).toFixed(1)} MB`;
}

/** The items list's filters: a state, and a job typed as `name` or `name:vN`. */
function ItemFilter({ model }: { model: LaunchModel }): JSX.Element {
  const [job, setJob] = React.useState(model.filter.job ?? '');
  return (
    <form
      className="jp-LaunchSidebar-filter"
      onSubmit={event => {
        event.preventDefault();
        void model.setFilter({ job: job.trim() || null });
      }}
    >
      <select
        name="state"
        aria-label="Filter by state"
        value={model.filter.state ?? ''}
        onChange={event => void model.setFilter({ state: event.target.value || null })}
      >
        <option value="">every state</option>
        {model.meta.states.map(state => (
          <option key={state} value={state}>
            {state}
          </option>
        ))}
      </select>
      <input
        name="job"
        aria-label="Filter by job"
        placeholder="job (name or name:vN), Enter"
        value={job}
        onChange={event => setJob(event.target.value)}
        onBlur={() => void model.setFilter({ job: job.trim() || null })}
      />
    </form>
  );
}

/** "cell N of M" and the elapsed time over a bar of the cells done, while a notebook runs. */
function ProgressBar({ item, now }: { item: Item; now?: number }): JSX.Element | null {
  const progress = cellProgress(item, now);
  if (progress === null) {
    return null;
  }
  return (
    <div
      className="jp-LaunchSidebar-progress"
      data-cell={item.progress?.cell}
      data-cells={item.progress?.cells}
      title={item.progress?.source}
    >
      <div className="jp-LaunchSidebar-progressTrack">
        <div
          className="jp-LaunchSidebar-progressFill"
          style={{ width: `${Math.round(progress.done * 100)}%` }}
        />
      </div>
      <span className="jp-LaunchSidebar-progressLabel">{progress.label}</span>
    </div>
  );
}

function AgentList(props: { agents: readonly Agent[]; meta: Readonly<Meta> }): JSX.Element {
  const { agents, meta } = props;
  return (
    <section className="jp-LaunchSidebar-section jp-LaunchSidebar-agents">
      <h3>Agents</h3>
      {agents.length === 0 && (
        <p className="jp-LaunchSidebar-muted">
          No agent is running. Start one with <code>%launch agent start</code>.
        </p>
      )}
      <ul>
        {agents.map(agent => {
          const health = agentHealth(agent.heartbeat_age, meta.lease_ttl);
          return (
            <li key={agent.id} className="jp-LaunchSidebar-row jp-LaunchSidebar-agent" data-agent-id={agent.id}>
              <div className="jp-LaunchSidebar-line">
                <span
                  className={`jp-LaunchHealth jp-LaunchHealth-${health}`}
                  title={`heartbeat ${health}`}
                />
                <span className="jp-LaunchSidebar-name">
                  {agent.host}:{agent.pid}
                </span>
                <span className="jp-LaunchSidebar-muted">
                  {agent.running}/{agent.max_jobs} running
                </span>
              </div>
              <div className="jp-LaunchSidebar-line jp-LaunchSidebar-muted">
                <span>{agent.queues.length ? agent.queues.join(', ') : 'every queue'}</span>
                <span className="jp-LaunchSidebar-heartbeat">
                  heartbeat {formatAge(agent.heartbeat_age)}
                </span>
              </div>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

function ItemDetail(props: ViewProps): JSX.Element {
  const { model } = props;
  const item = model.item;
  const id = model.selectedItemId ?? '';
  const [busy, setBusy] = React.useState(false);
  const run = (action: () => Promise<unknown>) => async () => {
    setBusy(true);
    try {
      await action();
    } finally {
      setBusy(false);
    }
  };
  const openNotebook = run(async () => {
    const path = await model.notebookPath(id);
    if (path !== null) {
      await props.openNotebook(path, id);
    }
  });
  const openOutput = (name: string) =>
    run(async () => {
      const path = await model.outputPath(id, name);
      if (path !== null) {
        await props.openNotebook(path); // no item id: Lab opens it under its own name
      }
    });
  return (
    <section className="jp-LaunchSidebar-section jp-LaunchSidebar-detail" data-item-id={id}>
      <div className="jp-LaunchSidebar-toolbar">
        <button className="jp-LaunchSidebar-link" onClick={() => void model.selectItem(null)}>
          ← Items
        </button>
        {item && canCancel(item, model.meta) && (
          <button
            className="jp-LaunchSidebar-button jp-mod-warn"
            disabled={busy}
            onClick={run(() => model.cancel(id))}
          >
            Cancel
          </button>
        )}
        {item && canRequeue(item, model.meta) && (
          <button
            className="jp-LaunchSidebar-button"
            disabled={busy}
            onClick={run(() => model.requeue(id))}
          >
            Requeue
          </button>
        )}
        {item && hasNotebook(item) && (
          <button className="jp-LaunchSidebar-button" disabled={busy} onClick={openNotebook}>
            Open executed notebook
          </button>
        )}
        {item?.sweep_id && props.openResults && (
          <button
            className="jp-LaunchSidebar-button jp-LaunchSidebar-results"
            title={`Results of sweep ${item.sweep_id}: sortable table and comparison chart`}
            onClick={() => void props.openResults?.({ sweep: item.sweep_id })}
          >
            Results
          </button>
        )}
      </div>
      {model.actionError && (
        <div className="jp-LaunchSidebar-error" role="alert">
          {model.actionError}
        </div>
      )}
      {item === null ? (
        <p className="jp-LaunchSidebar-muted">Loading item {id}…</p>
      ) : (
        <>
          <ItemFacts
            item={item}
            meta={model.meta}
            openNotebook={openNotebook}
            openOutput={openOutput}
          />
          <ItemMetrics client={model.client} item={item} />
        </>
      )}
      <h3>
        Log
        {model.log?.truncated && <span className="jp-LaunchSidebar-muted"> (last part)</span>}
      </h3>
      <LogView text={model.log?.text ?? ''} done={model.log?.done ?? false} />
    </section>
  );
}

function ItemFacts({
  item,
  meta,
  openNotebook,
  openOutput
}: {
  item: Item;
  meta: Readonly<Meta>;
  openNotebook: () => void;
  openOutput: (name: string) => () => void;
}): JSX.Element {
  const rows: [string, React.ReactNode][] = [
    ['item', item.id],
    ['queue', item.queue],
    ['attempt', item.max_attempts ? `${item.attempt} of ${item.max_attempts}` : String(item.attempt)],
    ['priority', formatPriority(item.priority, meta)],
    ['duration', formatDuration(itemDuration(item, meta))],
    ['created', formatTime(item.created_at)]
  ];
  if (item.started_at) {
    rows.push(['started', formatTime(item.started_at)]);
  }
  if (item.finished_at) {
    rows.push(['finished', formatTime(item.finished_at)]);
  }
  if (item.exit_code !== null && item.exit_code !== undefined) {
    rows.push(['exit code', String(item.exit_code)]);
  }
  if (item.requeued_from) {
    rows.push(['requeued from', item.requeued_from]);
  }
  if (item.schedule) {
    rows.push(['schedule', item.schedule]);
  }
  if (item.run?.gpus?.length) {
    rows.push(['GPUs', item.run.gpus.join(',')]);
  }
  if (item.waiting_on?.length) {
    rows.push(['waiting on', item.waiting_on.join(', ')]);
  }
  const parameters = Object.entries(item.parameters);
  return (
    <div className="jp-LaunchSidebar-facts">
      <div className="jp-LaunchSidebar-line">
        <StateBadge state={item.state} meta={meta} />
        <span className="jp-LaunchSidebar-name">{item.job}</span>
        {item.cancel_requested && !isTerminal(item.state, meta) && (
          <span className="jp-LaunchSidebar-muted">cancelling…</span>
        )}
      </div>
      <ProgressBar item={item} />
      {item.progress?.source && (
        <div className="jp-LaunchSidebar-muted jp-LaunchSidebar-cellSource">
          {item.progress.source}
        </div>
      )}
      <dl>
        {rows.map(([key, value]) => (
          <React.Fragment key={key}>
            <dt>{key}</dt>
            <dd>{value}</dd>
          </React.Fragment>
        ))}
      </dl>
      {parameters.length > 0 && (
        <>
          <h3>Parameters</h3>
          <dl className="jp-LaunchSidebar-parameters">
            {parameters.map(([name, value]) => (
              <React.Fragment key={name}>
                <dt>{name}</dt>
                <dd>
                  {JSON.stringify(value)}
                  {item.overrides && name in item.overrides ? ' (set)' : ''}
                </dd>
              </React.Fragment>
            ))}
          </dl>
        </>
      )}
      {item.outputs.length > 0 && (
        <ul className="jp-LaunchSidebar-outputs" aria-label="Output files">
          {item.outputs.map(output => (
            <li key={output.path} data-kind={output.kind} title={output.path}>
              <a
                title={`Open ${output.name} in Lab`}
                onClick={output.kind === 'notebook' ? openNotebook : openOutput(output.name)}
              >
                {output.name}
              </a>
              <span className="jp-LaunchSidebar-muted"> {formatBytes(output.size)}</span>
            </li>
          ))}
        </ul>
      )}
      {item.waiting && (
        <div className="jp-LaunchSidebar-waiting" role="status">
          waiting: {item.waiting}
        </div>
      )}
      {item.warning && (
        <div className="jp-LaunchSidebar-warning" role="status">
          {item.warning}
        </div>
      )}
      {item.error && item.error.message !== item.state && (
        <div className="jp-LaunchSidebar-failure" role="alert">
          <strong>{item.error.message}</strong>
          {(item.error.stage || item.error.cell !== undefined) && (
            <div className="jp-LaunchSidebar-muted">
              {item.error.stage ? `stage: ${item.error.stage}` : ''}
              {item.error.cell !== null &&
              item.error.cell !== undefined &&
              !new RegExp(`\\bcell ${item.error.cell}\\b`).test(item.error.message)
                ? ` · failing cell: ${item.error.cell}`
                : ''}
            </div>
          )}
        </div>
      )}
    </div>
  );
}

/** The log text; it follows the end while the reader is at the end. */
function LogView({ text, done }: { text: string; done: boolean }): JSX.Element {
  const ref = React.useRef<HTMLPreElement>(null);
  const atEnd = React.useRef(true);
  React.useLayoutEffect(() => {
    const node = ref.current;
    if (node && atEnd.current) {
      node.scrollTop = node.scrollHeight;
    }
  }, [text]);
  const onScroll = () => {
    const node = ref.current;
    if (node) {
      atEnd.current = node.scrollHeight - node.scrollTop - node.clientHeight < 24;
    }
  };
  return (
    <pre
      ref={ref}
      className="jp-LaunchSidebar-log"
      data-done={done ? 'true' : 'false'}
      onScroll={onScroll}
    >
      {text || (done ? '(no output)' : 'waiting for output…')}
    </pre>
  );
}
