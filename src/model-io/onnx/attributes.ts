/** Reading an ONNX node's attributes (with the op's default where absent), and the shape of an op mapping. */
import { ENormError } from '../../errors.js';
import type { Builder } from './build.js';
import { nodeLabel } from './graph.js';
import type { WireAttribute, WireNode } from './wire.js';

/** Maps node `k` (`n`) into the builder's network, or cuts it. */
export type Op = (b: Builder, n: WireNode, k: number) => void;

export const attr = (n: WireNode, name: string): WireAttribute | undefined => n.attributes.find((a) => a.name === name);
export const int = (n: WireNode, name: string, fallback: number) => attr(n, name)?.i ?? fallback;
export const ints = (n: WireNode, name: string) => attr(n, name)?.ints;
export const float = (n: WireNode, name: string, fallback: number) => attr(n, name)?.f ?? fallback;
/**
 * A norm's epsilon (default 1e-5, as ONNX), for node k: E_MODEL naming the node unless finite and
 * >= 0 (as the tfjs reader's epsilon), so a corrupt file never reaches validation as a bad option.
 */
export function epsilon(n: WireNode, k: number): number {
  const e = float(n, 'epsilon', 1e-5);
  if (!(Number.isFinite(e) && e >= 0)) throw new ENormError('E_MODEL', `${nodeLabel(n, k)}: epsilon must be a finite number >= 0, got ${e}`);
  return e;
}
/** The node is op `op` of the default ONNX domain. */
export const isOp = (n: WireNode | undefined, op: string): n is WireNode => n !== undefined && n.opType === op && (n.domain === '' || n.domain === 'ai.onnx');
