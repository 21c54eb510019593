import { describe, expect, it } from 'vitest';
import { stampNode } from '../../src/record/node-stamp.js';

describe('stampNode', () => {
  it('adds the node to every object inside an array, at any depth, and leaves the rest as it was', () => {
    const doc = {
      role: 'x',
      sessions: [{ pid: 1 }, { pid: 2, node: 'other' }],
      nested: { findings: [{ id: 'a', evidence: [{ k: 1 }, 'text'] }] },
      tags: ['a', 'b'],
      none: null,
    };
    const out = stampNode(doc, 'db-1');
    expect(out).toEqual({
      role: 'x',
      sessions: [
        { node: 'db-1', pid: 1 },
        { pid: 2, node: 'other' },
      ],
      nested: { findings: [{ node: 'db-1', id: 'a', evidence: [{ node: 'db-1', k: 1 }, 'text'] }] },
      tags: ['a', 'b'],
      none: null,
    });
    // a copy: the input is untouched
    expect(doc.sessions[0]).toEqual({ pid: 1 });
  });
});
