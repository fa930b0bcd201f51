import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CliFailure } from '../../src/cli/failure.js';
import { encodeNpy, parseNpy } from '../../src/cli/npy.js';

/** Written by numpy 1.x/2.x (np.lib.format.write_array) for np.arange(6, dtype='<f4').reshape(2, 3) / 4. */
const NUMPY = {
  v1: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPgAAAD8AAEA/AACAPwAAoD8=',
  v2: 'k05VTVBZAgB0AAAAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPgAAAD8AAEA/AACAPwAAoD8=',
  v3: 'k05VTVBZAwB0AAAAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPgAAAD8AAEA/AACAPwAAoD8=',
  /** np.save of the scalar np.float32(2.5): shape (). */
  scalar: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAACBA',
};
const bytesOf = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));

/** A v1.0 file with the given header text (padded) and data bytes. */
function npyWith(header: string, dataBytes: number, version = 1): Uint8Array {
  const lengthBytes = version === 1 ? 2 : 4;
  const head = new TextEncoder().encode(header + '\n');
  const out = new Uint8Array(8 + lengthBytes + head.length + dataBytes);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, head.length, true);
  else view.setUint32(8, head.length, true);
  out.set(head, 8 + lengthBytes);
  return out;
}
const fails = (bytes: Uint8Array, message: RegExp) => {
  let error: unknown;
  try { parseNpy(bytes, 'x.npy'); } catch (e) { error = e; }
  expect(error).toBeInstanceOf(CliFailure);
  expect((error as CliFailure).code).toBe('E_OPTION');
  expect((error as Error).message).toMatch(/^x\.npy: not a float32 \.npy file: /);
  expect((error as Error).message).toMatch(message);
};

describe('.npy reader', () => {
  it.each(['v1', 'v2', 'v3'] as const)('reads what numpy writes (format %s)', (v) => {
    const a = parseNpy(bytesOf(NUMPY[v]), 'x.npy');
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(a.data)).toEqual([0, 0.25, 0.5, 0.75, 1, 1.25]);
  });

  it('reads a numpy scalar (shape ()) as one value', () => {
    const a = parseNpy(bytesOf(NUMPY.scalar), 'x.npy');
    expect(a.shape).toEqual([]);
    expect(Array.from(a.data)).toEqual([2.5]);
  });

  it('encodeNpy writes the same header numpy writes, padded to 64 bytes', () => {
    const data = Float32Array.from([0, 0.25, 0.5, 0.75, 1, 1.25]);
    expect(Buffer.from(encodeNpy(data, [2, 3])).toString('base64')).toBe(NUMPY.v1);
    const one = encodeNpy(Float32Array.from([1, 2, 3]), [3]);
    expect(new TextDecoder().decode(one.subarray(10, 80))).toContain("'shape': (3,), }");
    expect((one.length - 12) % 64).toBe(0);
  });

  it('refuses a bad magic, version and header length', () => {
    fails(new TextEncoder().encode('{"a": 1}'), /magic/);
    const v4 = bytesOf(NUMPY.v1); v4[6] = 4;
    fails(v4, /format version 4\.0/);
    const minor = bytesOf(NUMPY.v1); minor[7] = 1;
    fails(minor, /format version 1\.1/);
    const long = bytesOf(NUMPY.v1); long[8] = 0xff; long[9] = 0xff;
    fails(long, /header \(65535 bytes\)|over the limit/);
    const huge = bytesOf(NUMPY.v2); new DataView(huge.buffer).setUint32(8, 2 ** 31, true);
    fails(huge, /over the limit of 10000/);
    fails(bytesOf(NUMPY.v1).subarray(0, 9), /magic|ends inside/);
  });

  it('refuses other dtypes, Fortran order, bad shapes and a wrong data length', () => {
    fails(npyWith("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16), /dtype "<f8" is not '<f4'/);
    fails(npyWith("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8), /is not '<f4'/);
    fails(npyWith("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8), /Fortran order/);
    fails(npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }", 8), /unexpected/);
    fails(npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': 'x', }", 8), /shape must be a tuple/);
    fails(npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4), /tuple longer than 8/);
    fails(npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8), /needs 12 bytes of float32 data, the file has 8/);
    fails(npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 12), /needs 8 bytes .* has 12/);
    fails(npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", 8), /needs .* bytes/);
  });

  it('parses the dict without eval: extra, missing and repeated keys, and code, are refused', () => {
    fails(npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8), /keys \{descr, fortran_order, shape, x\}/);
    fails(npyWith("{'descr': '<f4', 'shape': (2,)}", 8), /not exactly descr/);
    fails(npyWith("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8), /appears twice/);
    fails(npyWith("{'descr': __import__('os').system('x'), 'fortran_order': False, 'shape': (2,)}", 8), /unexpected "__import__"/);
    fails(npyWith("{'__proto__': 1, 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8), /keys/);
    fails(npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': ((2,),)}", 8), /nested tuples/);
    fails(npyWith("{'descr': '<f4' 'fortran_order': False}", 8), /expected '\}'/);
    fails(npyWith("{'descr': '<f4\\n', 'fortran_order': False, 'shape': (2,)}", 8), /escapes/);
    fails(npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk", 8), /text after the dict/);
    fails(npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (12345678901234567,)}", 8), /more than 16 digits/);
  });

  it('accepts the double quotes, spacing and trailing commas Python allows', () => {
    const a = parseNpy(npyWith('{ "shape" : ( 2 , ) , "fortran_order":False,"descr":"<f4" , }', 8, 2), 'x.npy');
    expect(a.shape).toEqual([2]);
  });

  it('property: encodeNpy then parseNpy is the identity on float32 arrays of random shapes', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 }), fc.integer(), (shape, seed) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(seed + i) * 1e3));
      const back = parseNpy(encodeNpy(data, shape), 'x.npy');
      expect(back.shape).toEqual(shape);
      expect(Array.from(back.data)).toEqual(Array.from(data));
    }), { numRuns: 300 });
  });

  it('fuzz: mutated and truncated files give a CliFailure or a consistent array, never another error (>= 500 cases)', () => {
    const seeds = [bytesOf(NUMPY.v1), bytesOf(NUMPY.v2), bytesOf(NUMPY.v3), bytesOf(NUMPY.scalar), encodeNpy(new Float32Array(12), [3, 4])];
    const mutation = fc.record({
      seed: fc.integer({ min: 0, max: seeds.length - 1 }),
      edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      cut: fc.option(fc.nat(), { nil: undefined }),
      extra: fc.uint8Array({ maxLength: 8 }),
    });
    let accepted = 0;
    let refused = 0;
    fc.assert(fc.property(mutation, ({ seed, edits, cut, extra }) => {
      let bytes = new Uint8Array([...seeds[seed], ...extra]);
      for (const [at, value] of edits) bytes[at % bytes.length] = value;
      if (cut !== undefined) bytes = bytes.subarray(0, cut % (bytes.length + 1));
      try {
        const a = parseNpy(bytes, 'x.npy');
        expect(a.data.length).toBe(a.shape.reduce((x, y) => x * y, 1));
        expect(a.shape.every((d) => Number.isSafeInteger(d) && d >= 0)).toBe(true);
        accepted++;
      } catch (e) {
        expect(e).toBeInstanceOf(CliFailure);
        expect((e as Error).message.length).toBeLessThan(400);
        refused++;
      }
    }), { numRuns: 600 });
    expect(accepted + refused).toBeGreaterThanOrEqual(500);
    expect(refused).toBeGreaterThan(0);
  });
});
