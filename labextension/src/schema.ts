/**
 * The submit dialog's parameter fields, made from a job's JSON Schema, and the typed values
 * read back from what the user typed.
 */

import { Job, SchemaProperty } from './api';

export type FieldKind = 'integer' | 'number' | 'boolean' | 'enum' | 'string' | 'json';

export interface ParameterField {
  name: string;
  kind: FieldKind;
  default: unknown;
  minimum?: number;
  maximum?: number;
  options?: unknown[];
  description?: string;
}

/** What a form input holds: text for most fields, a flag for checkboxes. */
export type RawValue = string | boolean;

function schemaType(property: SchemaProperty): string | undefined {
  const types = Array.isArray(property.type) ? property.type : [property.type];
  return types.find(t => t !== undefined && t !== 'null');
}

/** One field per schema property, in the schema's order; the job's defaults fill gaps. */
export function fieldsFromJob(job: Pick<Job, 'schema' | 'parameters'>): ParameterField[] {
  const properties = job.schema?.properties ?? {};
  return Object.entries(properties).map(([name, property]) => {
    const fallback = job.parameters?.[name];
    const field: ParameterField = {
      name,
      kind: 'json',
      default: property.default !== undefined ? property.default : fallback,
      description: property.description ?? property.title
    };
    if (Array.isArray(property.enum) && property.enum.length > 0) {
      field.kind = 'enum';
      field.options = property.enum;
      return field;
    }
    const type = schemaType(property);
    if (type === 'integer' || type === 'number') {
      field.kind = type;
      field.minimum = property.minimum;
      field.maximum = property.maximum;
    } else if (type === 'boolean' || type === 'string') {
      field.kind = type;
    }
    return field;
  });
}

/** The input's initial content for `field`. */
export function initialValue(field: ParameterField): RawValue {
  const value = field.default;
  switch (field.kind) {
    case 'boolean':
      return value === true;
    case 'enum':
      return String(field.options?.findIndex(o => o === value) ?? 0);
    case 'string':
      return typeof value === 'string' ? value : '';
    case 'integer':
    case 'number':
      return typeof value === 'number' ? String(value) : '';
    default:
      return value === undefined ? '' : JSON.stringify(value);
  }
}

export type Parsed = { ok: true; value: unknown } | { ok: false; error: string };

/** The typed value of `raw` for `field`, or why it is not one. */
export function parseField(field: ParameterField, raw: RawValue): Parsed {
  switch (field.kind) {
    case 'boolean':
      return { ok: true, value: raw === true };
    case 'enum': {
      const options = field.options ?? [];
      const index = Number(raw);
      if (!Number.isInteger(index) || index < 0 || index >= options.length) {
        return { ok: false, error: `${field.name}: pick one of the listed values` };
      }
      return { ok: true, value: options[index] };
    }
    case 'string':
      return { ok: true, value: String(raw) };
    case 'integer':
    case 'number': {
      const text = String(raw).trim();
      const value = Number(text);
      if (text === '' || !isFinite(value)) {
        return { ok: false, error: `${field.name}: enter a number` };
      }
      if (field.kind === 'integer' && !Number.isInteger(value)) {
        return { ok: false, error: `${field.name}: enter a whole number` };
      }
      if (field.minimum !== undefined && value < field.minimum) {
        return { ok: false, error: `${field.name}: at least ${field.minimum}` };
      }
      if (field.maximum !== undefined && value > field.maximum) {
        return { ok: false, error: `${field.name}: at most ${field.maximum}` };
      }
      return { ok: true, value };
    }
    default:
      try {
        return { ok: true, value: JSON.parse(String(raw)) };
      } catch {
        return { ok: false, error: `${field.name}: enter a JSON value` };
      }
  }
}

/**
 * The parameters to submit: only the values that differ from the job's defaults (so the item's
 * overrides say what the user changed), plus every error found.
 */
export function collectParameters(
  fields: ParameterField[],
  raw: Record<string, RawValue>
): { parameters: Record<string, unknown>; errors: string[] } {
  const parameters: Record<string, unknown> = {};
  const errors: string[] = [];
  for (const field of fields) {
    const input = raw[field.name] ?? initialValue(field);
    const parsed = parseField(field, input);
    if (!parsed.ok) {
      errors.push(parsed.error);
    } else if (JSON.stringify(parsed.value) !== JSON.stringify(field.default)) {
      parameters[field.name] = parsed.value;
    }
  }
  return { parameters, errors };
}
