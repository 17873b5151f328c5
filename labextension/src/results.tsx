/**
 * The Results view (a main-area widget): a sweep's or a queue's results as a sortable table
 * with the best run highlighted, and the comparison chart the server builds (Vega-Lite, drawn
 * by vega-embed), refreshed by a Poll while shown. Also the chart component the sidebar's item
 * detail uses for an item's metrics.
 */

import { MainAreaWidget, ReactWidget, UseSignal } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { Item, LaunchClient, ResultsQuery, VegaLiteSpec } from './api';
import { launchIcon } from './icon';
import {
  Column,
  ResultsModel,
  ResultsSource,
  cellValue,
  formatCell,
  resultColumns
} from './resultsModel';

export { ResultsModel };

/** A Vega-Lite spec drawn by vega-embed (loaded on first use); redrawn when it changes. */
export function VegaChart({ spec }: { spec: VegaLiteSpec | null }): JSX.Element | null {
  const ref = React.useRef<HTMLDivElement>(null);
  const text = spec ? JSON.stringify(spec) : '';
  const [error, setError] = React.useState<string | null>(null);
  React.useEffect(() => {
    const node = ref.current;
    if (!node || !text) {
      return;
    }
    let finalize: (() => void) | null = null;
    let cancelled = false;
    void import('vega-embed')
      .then(({ default: embed }) =>
        embed(node, JSON.parse(text), { actions: false, renderer: 'svg' })
      )
      .then(result => {
        if (cancelled) {
          result.finalize();
        } else {
          finalize = () => result.finalize();
          node.dataset.rendered = 'true';
          setError(null);
        }
      })
      .catch(err => setError(err instanceof Error ? err.message : String(err)));
    return () => {
      cancelled = true;
      finalize?.();
    };
  }, [text]);
  if (!spec) {
    return null;
  }
  return (
    <div className="jp-LaunchChart">
      <div ref={ref} />
      {error && <div className="jp-LaunchSidebar-error">chart: {error}</div>}
    </div>
  );
}

/**
 * An item's metrics in the sidebar's detail: each one's last value (min, max, step) and the
 * chart of each against step, read again only when new points arrived.
 */
export function ItemMetrics(props: {
  client: Pick<LaunchClient, 'itemChart'>;
  item: Item;
}): JSX.Element | null {
  const { client, item } = props;
  const metrics = item.metrics ?? {};
  const names = Object.keys(metrics).sort();
  const seen = `${item.id}:${item.attempt}:` + names.map(n => `${n}=${metrics[n].count}`).join(',');
  const [spec, setSpec] = React.useState<VegaLiteSpec | null>(null);
  React.useEffect(() => {
    let cancelled = false;
    if (names.length === 0) {
      setSpec(null);
      return;
    }
    client
      .itemChart(item.id)
      .then(answer => !cancelled && setSpec(answer.spec))
      .catch(() => undefined); // the next change of the counts tries again
    return () => {
      cancelled = true;
    };
  }, [seen]);
  if (names.length === 0) {
    return null;
  }
  return (
    <div className="jp-LaunchSidebar-metrics" data-item-id={item.id}>
      <h3>Metrics</h3>
      <table className="jp-LaunchResults-table">
        <thead>
          <tr>
            <th>metric</th>
            <th>last</th>
            <th>min</th>
            <th>max</th>
            <th>step</th>
          </tr>
        </thead>
        <tbody>
          {names.map(name => {
            const m = metrics[name];
            const number = (v: number) => formatCell(v, { kind: 'metric', name });
            return (
              <tr key={name} data-metric={name}>
                <td>{name}</td>
                <td>{number(m.last)}</td>
                <td>{number(m.min)}</td>
                <td>{number(m.max)}</td>
                <td>{m.step}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <VegaChart spec={spec} />
    </div>
  );
}

/** The title of a Results view for `query`. */
export function resultsTitle(query: ResultsQuery): string {
  return query.sweep ? `Results: sweep ${query.sweep}` : query.queue ? `Results: ${query.queue}` : 'Results';
}

function ResultsTable({ model }: { model: ResultsModel }): JSX.Element {
  const answer = model.answer;
  if (answer === null) {
    return <p className="jp-LaunchSidebar-muted">Loading results…</p>;
  }
  if (answer.rows.length === 0) {
    return <p className="jp-LaunchSidebar-muted">No results yet.</p>;
  }
  const columns = resultColumns(answer.rows, answer.metrics);
  const sortedBy = (column: Column): string => {
    if (column.kind === 'metric') {
      const sort = model.sort ?? (answer.metric ? `${answer.metric}:${answer.goal === 'maximize' ? 'max' : 'min'}` : '');
      return !model.localSort && sort === `${column.name}:max`
        ? ' ▼'
        : !model.localSort && sort === `${column.name}:min`
          ? ' ▲'
          : '';
    }
    const local = model.localSort;
    return local && local.column.kind === column.kind && local.column.name === column.name
      ? local.descending
        ? ' ▼'
        : ' ▲'
      : '';
  };
  return (
    <table className="jp-LaunchResults-table">
      <thead>
        <tr>
          {columns.map(column => (
            <th
              key={`${column.kind}:${column.name}`}
              data-column={column.name}
              data-kind={column.kind}
              title={`Sort by ${column.name}`}
              onClick={() => void model.sortBy(column).catch(() => undefined)}
            >
              {column.name}
              {sortedBy(column)}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {model.rows.map(row => (
          <tr
            key={row.id}
            data-item-id={row.id}
            data-state={row.state}
            className={row.id === answer.best ? 'jp-LaunchResults-best' : undefined}
          >
            {columns.map(column => (
              <td key={`${column.kind}:${column.name}`}>
                {formatCell(cellValue(row, column), column)}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function ResultsView({ model }: { model: ResultsModel }): JSX.Element {
  const answer = model.answer;
  const goal = answer?.goal === 'maximize' ? 'highest' : 'lowest';
  return (
    <div className="jp-LaunchResults-content">
      <header className="jp-LaunchSidebar-header">
        <h2 className="jp-LaunchSidebar-title">{resultsTitle(model.query)}</h2>
        {answer?.metric && (
          <span className="jp-LaunchSidebar-muted">
            best: {goal} {answer.metric}
          </span>
        )}
        <button className="jp-LaunchSidebar-button" onClick={() => void model.refresh()}>
          Refresh
        </button>
      </header>
      {model.error && (
        <div className="jp-LaunchSidebar-error" role="alert">
          {model.error}
        </div>
      )}
      <div className="jp-LaunchResults-chart">
        <VegaChart spec={answer?.spec ?? null} />
      </div>
      <ResultsTable model={model} />
    </div>
  );
}

/** The React body of a Results view. */
export class ResultsWidget extends ReactWidget {
  constructor(client: ResultsSource, query: ResultsQuery) {
    super();
    this.addClass('jp-LaunchResults');
    this.model = new ResultsModel(client, query, () => (this.isVisible ? false : true));
  }

  readonly model: ResultsModel;

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.model.refresh().catch(() => undefined);
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>{() => <ResultsView model={this.model} />}</UseSignal>
    );
  }
}

/** A main-area Results view of `query`, titled and with the Launch icon. */
export function createResultsView(
  client: ResultsSource,
  query: ResultsQuery
): MainAreaWidget<ResultsWidget> {
  const content = new ResultsWidget(client, query);
  const widget = new MainAreaWidget({ content });
  const key = query.sweep ? `sweep-${query.sweep}` : query.queue ? `queue-${query.queue}` : 'all';
  widget.id = `launch-results-${key}`.replace(/[^A-Za-z0-9_-]/g, '_');
  widget.title.label = resultsTitle(query);
  widget.title.icon = launchIcon;
  widget.title.closable = true;
  return widget;
}
