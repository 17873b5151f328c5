/**
 * "Submit this notebook to a queue…": capture the notebook as a job (POST /jobs), then ask for
 * the queue, the parameters (fields from the job's schema) and the priority, and submit it.
 */

import { Dialog, ReactWidget, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import * as React from 'react';

import { Item, Job, LaunchClient, Meta, Queue } from './api';
import { SubmitChoice, initialChoice } from './choice';
import { ParameterField, RawValue, collectParameters, fieldsFromJob, initialValue } from './schema';
import { captureNotes } from './format';

/** The dialog body: the form keeps its values in `choice`, read when the dialog closes. */
class SubmitForm extends ReactWidget {
  constructor(
    private readonly _job: Job,
    private readonly _queues: Queue[],
    private readonly _priorities: readonly string[],
    private readonly _fields: ParameterField[],
    readonly choice: SubmitChoice,
    private readonly _errors: string[]
  ) {
    super();
    this.addClass('jp-LaunchSubmit');
  }

  getValue(): SubmitChoice {
    return this.choice;
  }

  render(): JSX.Element {
    return (
      <SubmitFormView
        job={this._job}
        queues={this._queues}
        priorities={this._priorities}
        fields={this._fields}
        choice={this.choice}
        errors={this._errors}
        onValidity={why => this._setSubmitEnabled(why)}
      />
    );
  }

  /** Disable the dialog's Submit button while a value is invalid; its tooltip says why. */
  private _setSubmitEnabled(why: string[]): void {
    const button = this.node.closest('.jp-Dialog')?.querySelector('button.jp-mod-accept');
    if (button instanceof HTMLButtonElement) {
      button.disabled = why.length > 0;
      button.title = why.length > 0 ? `Submit is disabled: ${why.join('; ')}` : '';
    }
  }
}

/** What a field accepts, in words: its choices, or its bounds. */
export function fieldHint(field: ParameterField): string {
  if (field.kind === 'enum') {
    const shown = (field.options ?? []).map(o => (typeof o === 'string' ? o : JSON.stringify(o)));
    return `one of ${shown.join(', ')}`;
  }
  const parts: string[] = [];
  if (field.minimum !== undefined) {
    parts.push(`≥ ${field.minimum}`);
  }
  if (field.maximum !== undefined) {
    parts.push(`≤ ${field.maximum}`);
  }
  if (field.kind === 'integer') {
    parts.unshift('whole number');
  } else if (field.kind === 'json') {
    parts.push('JSON');
  }
  return parts.join(', ');
}

interface FormProps {
  job: Job;
  queues: Queue[];
  /** The server's priority names, highest first. */
  priorities: readonly string[];
  fields: ParameterField[];
  choice: SubmitChoice;
  errors: string[];
  /** Told after every change: why Submit cannot be pressed now (empty: it can). */
  onValidity: (why: string[]) => void;
}

function SubmitFormView(props: FormProps): JSX.Element {
  const { choice } = props;
  const [, redraw] = React.useReducer((n: number) => n + 1, 0);
  const set = (update: () => void) => {
    update();
    redraw();
  };
  const why = collectParameters(props.fields, choice.raw).errors;
  if (!choice.queue) {
    why.unshift('pick a queue');
  }
  React.useEffect(() => props.onValidity(why));
  const notes = captureNotes(props.job);
  return (
    <form className="jp-LaunchSubmit-form" onSubmit={e => e.preventDefault()}>
      <p className="jp-LaunchSubmit-job">
        Job <strong>{props.job.ref}</strong>
      </p>
      {notes.length > 0 && (
        <ul className="jp-LaunchSidebar-warning jp-LaunchSubmit-warnings" role="status">
          {notes.map(note => (
            <li key={note}>{note}</li>
          ))}
        </ul>
      )}
      {props.errors.length > 0 && (
        <ul className="jp-LaunchSidebar-error" role="alert">
          {props.errors.map(e => (
            <li key={e}>{e}</li>
          ))}
        </ul>
      )}
      <label>
        Queue
        <select
          name="queue"
          value={choice.queue}
          onChange={e => set(() => (choice.queue = e.target.value))}
        >
          {props.queues.map(q => (
            <option key={q.name} value={q.name}>
              {q.name} ({q.runner})
            </option>
          ))}
        </select>
      </label>
      {props.fields.length > 0 && <h3>Parameters</h3>}
      {props.fields.map(field => (
        <FieldInput
          key={field.name}
          field={field}
          value={choice.raw[field.name] ?? initialValue(field)}
          onChange={value => set(() => (choice.raw[field.name] = value))}
        />
      ))}
      {why.length > 0 && (
        <p className="jp-LaunchSubmit-why" role="status">
          Submit is disabled: {why.join('; ')}
        </p>
      )}
      <label>
        Priority
        <select
          name="priority"
          value={choice.priority}
          onChange={e => set(() => (choice.priority = e.target.value))}
        >
          {props.priorities.map(p => (
            <option key={p} value={p}>
              {p}
            </option>
          ))}
        </select>
      </label>
    </form>
  );
}

function FieldInput(props: {
  field: ParameterField;
  value: RawValue;
  onChange: (value: RawValue) => void;
}): JSX.Element {
  const { field, value, onChange } = props;
  const name = `parameter-${field.name}`;
  let input: JSX.Element;
  switch (field.kind) {
    case 'boolean':
      input = (
        <input
          type="checkbox"
          name={name}
          checked={value === true}
          onChange={e => onChange(e.target.checked)}
        />
      );
      break;
    case 'enum':
      input = (
        <select name={name} value={String(value)} onChange={e => onChange(e.target.value)}>
          {(field.options ?? []).map((option, index) => (
            <option key={index} value={String(index)}>
              {typeof option === 'string' ? option : JSON.stringify(option)}
            </option>
          ))}
        </select>
      );
      break;
    case 'integer':
    case 'number':
      input = (
        <input
          type="number"
          name={name}
          value={String(value)}
          min={field.minimum}
          max={field.maximum}
          step={field.kind === 'integer' ? 1 : 'any'}
          onChange={e => onChange(e.target.value)}
        />
      );
      break;
    default:
      input = (
        <input
          type="text"
          name={name}
          value={String(value)}
          placeholder={field.kind === 'json' ? 'JSON value' : ''}
          onChange={e => onChange(e.target.value)}
        />
      );
  }
  const hint = fieldHint(field);
  return (
    <label className={`jp-LaunchSubmit-field jp-LaunchSubmit-${field.kind}`} title={field.description}>
      {field.name}
      {input}
      {hint && <span className="jp-LaunchSubmit-hint">{hint}</span>}
    </label>
  );
}

/**
 * Capture the notebook at `path` and submit it with what the user picks; the new item, or null
 * when the user closed the dialog. `meta` is the server's (LaunchModel.loadMeta).
 */
export async function submitNotebook(
  client: LaunchClient,
  path: string,
  meta: Promise<Meta>
): Promise<Item | null> {
  let job: Job;
  let queues: Queue[];
  let server: Meta;
  try {
    [job, queues, server] = await Promise.all([client.createJob(path), client.queues(), meta]);
  } catch (err) {
    await showErrorMessage('Cannot submit this notebook', String((err as Error).message ?? err));
    return null;
  }
  if (queues.length === 0) {
    await showErrorMessage(
      'No queue to submit to',
      'Create a queue first, e.g. with `%launch queue create local` in a notebook.'
    );
    return null;
  }
  const fields = fieldsFromJob(job);
  const choice = initialChoice(queues, server);
  let errors: string[] = [];
  for (;;) {
    const result = await showDialog({
      title: 'Submit this notebook to a queue',
      body: new SubmitForm(job, queues, server.priorities, fields, choice, errors),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Submit' })]
    });
    if (!result.button.accept) {
      return null;
    }
    const collected = collectParameters(fields, choice.raw);
    errors = collected.errors;
    if (errors.length > 0) {
      continue;
    }
    try {
      return await client.submit({
        job: job.ref,
        queue: choice.queue,
        parameters: collected.parameters,
        priority: choice.priority
      });
    } catch (err) {
      errors = [String((err as Error).message ?? err)];
    }
  }
}
