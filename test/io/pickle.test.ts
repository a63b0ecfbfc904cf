// The restricted unpickler: Python's own pickles of plain data in protocols 0-5 read back to the
// values Python sees; non-allowlisted globals stay inert; hostile and malformed opcode streams are
// errors naming the opcode and offset.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { PickleError, unpickle } from '../../lib/io/pickle.ts';
import { PyCall, PyDict, PyGlobal, PySet, PyTuple, summarize, type PyValue } from '../../lib/io/pickle-values.ts';
import { unpickleTorch, UnsafePickleError } from '../../lib/io/torch-pickle.ts';
import { pthExpected, pthFixture, type PthExpected } from './pth-fixtures.ts';

let expected: PthExpected;
before(() => {
  expected = pthExpected();
});

const noPid = (): PyValue => {
  throw new Error('no persistent ids here');
};

function load(bytes: Uint8Array | string): PyValue {
  const data = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
  return unpickleTorch(data, noPid).value;
}

/** The same rendering as as_json() in make_pth_fixtures.py. */
function toJson(v: PyValue): unknown {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'bigint') return { $int: v.toString() };
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return { $float: 'nan' };
    if (!Number.isFinite(v)) return { $float: v > 0 ? 'inf' : '-inf' };
    return v;
  }
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('hex') };
  if (Array.isArray(v)) return v.map(toJson);
  if (v instanceof PyTuple) return { $tuple: v.items.map(toJson) };
  if (v instanceof PySet) return { $set: v.items.map(toJson).sort() };
  if (v instanceof PyDict) return { $dict: [...v.entries()].map(([k, x]) => [toJson(k), toJson(x)]) };
  throw new Error(`unexpected ${String(v)}`);
}

describe('unpickle: Python data in every protocol', () => {
  for (let p = 0; p <= 5; p++) {
    it(`protocol ${p} reads back what Python pickled`, () => {
      const value = load(readFileSync(pthFixture(`data-p${p}.pkl`)));
      assert.deepEqual(toJson(value), expected.pickles['data']);
      // Python's memo keeps shared references shared.
      const shared = (value as PyDict).get('shared') as PyValue[][];
      assert.equal(shared[0], shared[1]);
      assert.equal((value as PyDict).get('ordered') instanceof PyDict && ((value as PyDict).get('ordered') as PyDict).typeName, 'collections.OrderedDict');
      assert.ok(Object.is(((value as PyDict).get('floats') as number[])[1], -0), '-0.0 keeps its sign');
    });
  }

  it('globals outside the allowlist are inert placeholders that record their arguments', () => {
    const { value, placeholders } = unpickleTorch(readFileSync(pthFixture('placeholders.pkl')), noPid);
    const d = value as PyDict;
    const args = d.get('args') as PyCall;
    assert.ok(args instanceof PyCall);
    assert.equal(args.root?.qualifiedName, 'argparse.Namespace');
    assert.equal(args.how, 'NEWOBJ');
    assert.equal((args.state as PyDict).get('model'), 'vit_base_patch16');
    assert.deepEqual(summarize(d.get('scalar')!), {
      $object: 'numpy._core.multiarray.scalar',
      args: [{ $object: 'numpy.dtype', args: ['f4', false, true], state: [3, '<', null, null, null, -1, -1, 0] }, '<bytes 4>'],
    });
    assert.deepEqual(placeholders.map((p) => p.name).sort(), [
      'argparse.Namespace', 'numpy._core.multiarray._reconstruct', 'numpy._core.multiarray.scalar', 'numpy.dtype', 'numpy.ndarray', 'pathlib.PosixPath', 'pathlib.PurePosixPath',
    ]);
  });

  it('a self-referencing list is a cycle, not an infinite loop', () => {
    const v = load('\x80\x02]q\x00h\x00a.') as PyValue[];
    assert.equal(v[0], v);
    assert.deepEqual(summarize(v), ['<cycle>']);
  });
});

describe('unpickle: hostile and malformed streams', () => {
  const refused: [string, string, RegExp][] = [
    ['protocol 0 GLOBAL + REDUCE', "cos\nsystem\n(S'touch /tmp/medtune-never'\ntR.", /names os\.system \(opcode GLOBAL at byte 0\)/],
    ['protocol 0 INST', "(S'ls'\nios\nsystem\n.", /names os\.system \(opcode INST at byte 7\)/],
    ['builtins.getattr', 'cbuiltins\ngetattr\n.', /names builtins\.getattr/],
    ['Python 2 __builtin__.eval', 'c__builtin__\neval\n.', /names builtins\.eval/],
    ['STACK_GLOBAL subprocess.Popen', '\x80\x04\x8c\x0asubprocess\x8c\x05Popen\x93.', /names subprocess\.Popen \(opcode STACK_GLOBAL at byte 21\)/],
    ['torch.load inside a pickle', 'ctorch\nload\n.', /names torch\.load/],
  ];
  for (const [what, bytes, pattern] of refused) {
    it(`refuses ${what}`, () => {
      assert.throws(() => load(bytes), (e: Error) => e instanceof UnsafePickleError && pattern.test(e.message) && /Nothing was executed/.test(e.message));
    });
  }

  it('an unknown callable is recorded, not called', () => {
    const v = load('cmymodule\nMyClass\n(I1\nVtext\ntR}b.') as PyCall;
    assert.ok(v instanceof PyCall);
    assert.ok(v.callee instanceof PyGlobal);
    assert.equal(v.root?.qualifiedName, 'mymodule.MyClass');
    assert.deepEqual(v.args, [1, 'text']);
    assert.ok(v.state instanceof PyDict);
  });

  const malformed: [string, string, RegExp][] = [
    ['unknown opcode', '\x80\x02\xfe.', /unknown pickle opcode 0xfe at byte 2/],
    ['stack underflow', '\x80\x02R.', /opcode REDUCE at byte 2: stack underflow/],
    ['missing memo entry', '\x80\x02h\x05.', /opcode BINGET at byte 2: memo key 5 was never stored/],
    ['two values at STOP', 'NN.', /STOP with 2 values on the stack/],
    ['protocol 6', '\x80\x06N.', /unsupported pickle protocol 6/],
    ['calling a tuple', '\x80\x02)))R.', /tuple \(0 items\) is not callable/],
    ['a huge length claim', '\x80\x02X\xff\xff\xff\x7f', /pickle truncated: opcode BINUNICODE at byte 2 needs 2147483647 more bytes/],
    ['no STOP', '\x80\x02N', /data ends at byte 3 before the STOP opcode/],
    ['out-of-band buffer', '\x80\x05\x97.', /out-of-band buffers/],
    ['MARK never closed', '\x80\x02(N.', /STOP inside an unclosed MARK/],
    ['invalid UTF-8', '\x80\x02X\x02\x00\x00\x00\xc3\x28.', /string is not valid UTF-8/],
    ['rebuild without a storage', 'ctorch._utils\n_rebuild_tensor_v2\n(I1\nI0\n(t(tI00\nNtR.', /_rebuild_tensor_v2: the storage argument is int, not a storage/],
    ['_rebuild_tensor_v2 with 2 arguments', 'ctorch._utils\n_rebuild_tensor_v2\n(I1\nI0\ntR.', /takes 6 to 7 arguments, got 2/],
    ['_codecs.encode beyond latin-1', 'c_codecs\nencode\n(Vabc\nVutf-16\ntR.', /only encode\(str, 'latin1'\)/],
    ['SETITEM on a list', '](I1\nI2\nu.', /cannot set items on list/],
  ];
  for (const [what, bytes, pattern] of malformed) {
    it(`${what} is a PickleError`, () => {
      assert.throws(() => load(bytes), (e: Error) => e instanceof PickleError && pattern.test(e.message));
    });
  }

  it('unpickle() without hooks for persistent ids rejects them', () => {
    assert.throws(() => unpickle(Buffer.from('\x80\x02NQ.', 'latin1'), { findGlobal: (m, n) => new PyGlobal(m, n) }), /persistent ids are not expected/);
  });
});
