/** The two protobuf walking steps the ONNX readers share (wire.ts, and scope.ts for subgraphs). */
import type protobuf from 'protobufjs/minimal.js';
import { ENormError } from '../../errors.js';

type Reader = protobuf.Reader;

/** Calls `field(number, wireType)` for each field of the message that ends at `end`; unread fields are skipped. */
export function fields(r: Reader, end: number, field: (num: number, wire: number, tagStart: number) => boolean): void {
  while (r.pos < end) {
    const tagStart = r.pos;
    const tag = r.uint32();
    const num = tag >>> 3;
    const wire = tag & 7;
    if (num === 0) throw new ENormError('E_MODEL', 'field number 0 in the protobuf data');
    if (!field(num, wire, tagStart)) r.skipType(wire);
  }
  if (r.pos !== end) throw new ENormError('E_MODEL', 'a protobuf message overruns its length');
}

/** The end offset of the length-delimited field starting at the reader's position. */
export function sub(r: Reader, wire: number): number {
  if (wire !== 2) throw new ENormError('E_MODEL', `a message field has wire type ${wire}, not 2`);
  const len = r.uint32();
  const end = r.pos + len;
  if (end > r.len) throw new ENormError('E_MODEL', `a field of ${len} bytes runs past the end of the file`);
  return end;
}
