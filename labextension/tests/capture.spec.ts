import { captureNotes } from '../src/format';

describe('capture notes in the submit dialog', () => {
  it('shows every warning of the capture', () => {
    const warnings = ["module 'torch' is imported but not installed here", "kernel 'r' is missing"];
    expect(captureNotes({ warnings, unresolved: ['torch'] })).toEqual(warnings);
  });

  it('names unresolved imports when the answer has no warnings', () => {
    expect(captureNotes({ unresolved: ['torch', 'jax'] })).toEqual([
      'not installed at capture, so not required by the job: torch, jax'
    ]);
  });

  it('says nothing for a clean capture', () => {
    expect(captureNotes({ warnings: [], unresolved: [] })).toEqual([]);
  });
});
