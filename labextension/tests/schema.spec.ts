import { Job } from '../src/api';
import { collectParameters, fieldsFromJob, initialValue, parseField } from '../src/schema';

const job: Pick<Job, 'schema' | 'parameters'> = {
  parameters: { lr: 0.01, epochs: 5, optimizer: 'adam', augment: true, name: 'run', layers: [64, 64] },
  schema: {
    type: 'object',
    properties: {
      lr: { type: 'number', default: 0.01, minimum: 0.0001, maximum: 1 },
      epochs: { type: 'integer', default: 5, minimum: 1 },
      optimizer: { type: 'string', enum: ['adam', 'sgd'], default: 'adam' },
      augment: { type: 'boolean', default: true },
      name: { type: ['string', 'null'], default: 'run' },
      layers: { type: 'array' }
    }
  }
};

describe('fieldsFromJob', () => {
  it('makes one field per schema property with its kind, bounds and default', () => {
    const fields = fieldsFromJob(job);
    expect(fields.map(f => [f.name, f.kind])).toEqual([
      ['lr', 'number'],
      ['epochs', 'integer'],
      ['optimizer', 'enum'],
      ['augment', 'boolean'],
      ['name', 'string'],
      ['layers', 'json']
    ]);
    expect(fields[0]).toMatchObject({ minimum: 0.0001, maximum: 1, default: 0.01 });
    expect(fields[2].options).toEqual(['adam', 'sgd']);
    expect(fields[5].default).toEqual([64, 64]); // from the job's defaults
  });

  it('fills the inputs with the defaults', () => {
    const fields = fieldsFromJob(job);
    expect(fields.map(initialValue)).toEqual(['0.01', '5', '0', true, 'run', '[64,64]']);
  });

  it('makes no fields for a job without parameters', () => {
    expect(fieldsFromJob({ parameters: {}, schema: {} })).toEqual([]);
  });
});

describe('parseField', () => {
  const [lr, epochs, optimizer] = fieldsFromJob(job);

  it('checks numbers against the bounds', () => {
    expect(parseField(lr, '0.5')).toEqual({ ok: true, value: 0.5 });
    expect(parseField(lr, '2')).toEqual({ ok: false, error: 'lr: at most 1' });
    expect(parseField(lr, '0')).toEqual({ ok: false, error: 'lr: at least 0.0001' });
    expect(parseField(lr, 'fast')).toEqual({ ok: false, error: 'lr: enter a number' });
    expect(parseField(lr, '')).toEqual({ ok: false, error: 'lr: enter a number' });
  });

  it('wants whole numbers for integers', () => {
    expect(parseField(epochs, '10')).toEqual({ ok: true, value: 10 });
    expect(parseField(epochs, '2.5')).toEqual({ ok: false, error: 'epochs: enter a whole number' });
  });

  it('maps an enum choice back to its value', () => {
    expect(parseField(optimizer, '1')).toEqual({ ok: true, value: 'sgd' });
    expect(parseField(optimizer, '7').ok).toBe(false);
  });
});

describe('collectParameters', () => {
  it('sends only the values the user changed, typed', () => {
    const fields = fieldsFromJob(job);
    const result = collectParameters(fields, { lr: '0.1', optimizer: '1', augment: false, epochs: '5' });
    expect(result).toEqual({ parameters: { lr: 0.1, optimizer: 'sgd', augment: false }, errors: [] });
  });

  it('reports every bad value', () => {
    const fields = fieldsFromJob(job);
    const result = collectParameters(fields, { lr: '5', epochs: '0', layers: '[64,' });
    expect(result.errors).toEqual(['lr: at most 1', 'epochs: at least 1', 'layers: enter a JSON value']);
  });
});
