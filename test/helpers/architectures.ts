import type { Layer, Network } from '../../src/network/layers.js';
import { mulberry32, normalArray, uniformArray } from '../../src/network/random.js';

export type ConvOp = 'conv' | 'conv-s2' | 'depthwise' | 'bn' | 'relu' | 'leaky' | 'identity' | 'max-pool' | 'avg-pool' | 'dropout' | 'residual' | 'residual-proj' | 'concat' | 'tanh';
export type DenseOp = 'dense-relu' | 'dense-leaky' | 'dense-identity' | 'dense-tanh' | 'dense-residual' | 'dense-concat' | 'dense-bias-free';

export interface ArchitectureSpec {
  seed: number;
  torch: boolean;
  conv: ConvOp[];
  neck: 'flatten' | 'global-avg-pool' | 'global-max-pool';
  dense: DenseOp[];
  momentum: boolean;
}

export interface Architecture {
  net: Network;
  /** Per-example input shape. */
  shape: number[];
}

/** Builds a random but valid network from a spec; conv ops are skipped when the spec has none. */
export function buildArchitecture(spec: ArchitectureSpec): Architecture {
  const rng = mulberry32(spec.seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
  const net: Layer[] = [];
  let n = 0;
  const name = (p: string) => `${p}${n++}`;
  const companions = (w: Float32Array, b?: Float32Array) =>
    spec.momentum ? { weight: normalArray(w.length, 0.1, rng), ...(b ? { bias: normalArray(b.length, 0.1, rng) } : {}) } : undefined;
  const layout = spec.torch ? 'oihw' : 'hwio';
  let cur = 'in';
  const push = (l: Layer) => { net.push(l); cur = l.name as string; return cur; };

  const conv = (from: string, cin: number, cout: number, k: number, stride: number, padding: 'same' | 'valid'): string => {
    const weight = normalArray(k * k * cin * cout, Math.sqrt(2 / (k * k * cin)), rng);
    const bias = rng() < 0.5 ? normalArray(cout, 0.1, rng) : undefined;
    return push({
      kind: 'conv2d', name: name('conv'), inputs: [from], weight, bias, strides: stride, padding, layout,
      shape: spec.torch ? [cout, cin, k, k] : [k, k, cin, cout], companions: companions(weight, bias),
    });
  };
  const bn = (from: string, ch: number) => push({
    kind: 'batch-norm', name: name('bn'), inputs: [from], gamma: uniformArray(ch, 0.5, 1.5, rng), beta: normalArray(ch, 0.2, rng),
    mean: normalArray(ch, 0.2, rng), variance: uniformArray(ch, 0.5, 1.5, rng), epsilon: 1e-3,
  });
  const relu = (from: string) => push({ kind: 'relu', name: name('relu'), inputs: [from] });

  let h = 0;
  let w = 0;
  let ch = 0;
  let shape: number[];
  if (spec.conv.length) {
    h = int(3, 6); w = int(3, 6); ch = int(1, 3);
    // Only convolution layouts tell an NCHW network from an NHWC one.
    const hasConv = spec.conv.some((op) => ['conv', 'conv-s2', 'depthwise', 'residual', 'residual-proj', 'concat'].includes(op));
    shape = spec.torch && hasConv ? [ch, h, w] : [h, w, ch];
    net.push({ kind: 'input', name: 'in', shape });
    const out = (size: number, k: number, s: number, pad: 'same' | 'valid') => (pad === 'same' ? Math.ceil(size / s) : Math.floor((size - k) / s) + 1);
    for (const op of spec.conv) {
      switch (op) {
        case 'conv':
        case 'conv-s2': {
          const k = int(1, 3);
          const s = op === 'conv' ? 1 : 2;
          const pad = h >= k && w >= k && rng() < 0.5 ? 'valid' : 'same';
          const cout = int(1, 5);
          conv(cur, ch, cout, k, s, pad);
          [h, w, ch] = [out(h, k, s, pad), out(w, k, s, pad), cout];
          break;
        }
        case 'depthwise': {
          const m = int(1, 2);
          const weight = normalArray(9 * ch * m, 0.5, rng);
          const bias = rng() < 0.5 ? normalArray(ch * m, 0.1, rng) : undefined;
          push({
            kind: 'depthwise-conv2d', name: name('dw'), inputs: [cur], weight, bias, padding: 'same', layout: spec.torch ? 'oihw' : 'hwcm',
            shape: spec.torch ? [ch * m, 1, 3, 3] : [3, 3, ch, m], companions: companions(weight, bias),
          });
          ch *= m;
          break;
        }
        case 'bn': bn(cur, ch); break;
        case 'relu': relu(cur); break;
        case 'leaky': push({ kind: 'leaky-relu', name: name('leaky'), inputs: [cur], alpha: 0.1 }); break;
        case 'identity': push({ kind: 'identity', name: name('id'), inputs: [cur] }); break;
        case 'dropout': push({ kind: 'dropout', name: name('drop'), inputs: [cur], rate: 0.3 }); break;
        case 'tanh': push({ kind: 'activation', name: name('tanh'), inputs: [cur], fn: 'tanh' }); break;
        case 'max-pool':
        case 'avg-pool':
          if (h >= 2 && w >= 2) {
            push({ kind: op, name: name('pool'), inputs: [cur], size: 2 });
            [h, w] = [Math.floor(h / 2), Math.floor(w / 2)];
          }
          break;
        case 'residual': {
          const x = cur;
          conv(x, ch, ch, 3, 1, 'same'); bn(cur, ch); relu(cur); conv(cur, ch, ch, 3, 1, 'same');
          const f = bn(cur, ch);
          push({ kind: 'add', name: name('add'), inputs: [f, x] });
          relu(cur);
          break;
        }
        case 'residual-proj': {
          const x = cur;
          const cout = int(1, 5);
          conv(x, ch, cout, 3, 2, 'same'); bn(cur, cout); relu(cur); conv(cur, cout, cout, 3, 1, 'same');
          const f = bn(cur, cout);
          conv(x, ch, cout, 1, 2, 'same');
          const s = bn(cur, cout);
          push({ kind: 'add', name: name('add'), inputs: [f, s] });
          relu(cur);
          [h, w, ch] = [Math.ceil(h / 2), Math.ceil(w / 2), cout];
          break;
        }
        case 'concat': {
          const x = cur;
          const a = int(1, 3);
          const b = int(1, 3);
          const left = conv(x, ch, a, 1, 1, 'same');
          const right = relu(conv(x, ch, b, 3, 1, 'same'));
          push({ kind: 'concat', name: name('cat'), inputs: [left, right] });
          ch = a + b;
          break;
        }
      }
    }
    if (spec.neck === 'flatten') {
      push({ kind: 'flatten', name: name('flat'), inputs: [cur], order: spec.torch ? 'channels-first' : 'channels-last' });
      ch = ch * h * w;
    } else {
      push({ kind: spec.neck, name: name('gpool'), inputs: [cur] });
    }
  } else {
    ch = int(1, 6);
    shape = [ch];
    net.push({ kind: 'input', name: 'in', shape });
  }

  const dense = (from: string, nIn: number, nOut: number, bias = true) => {
    const weight = normalArray(nIn * nOut, Math.sqrt(2 / nIn), rng);
    const b = bias ? normalArray(nOut, 0.1, rng) : undefined;
    return push({
      kind: 'dense', name: name('fc'), inputs: [from], weight, bias: b, layout: spec.torch ? 'oi' : 'io',
      shape: spec.torch ? [nOut, nIn] : [nIn, nOut], companions: companions(weight, b),
    });
  };
  for (const op of spec.dense) {
    const nOut = int(1, 6);
    switch (op) {
      case 'dense-relu': dense(cur, ch, nOut); relu(cur); ch = nOut; break;
      case 'dense-leaky': dense(cur, ch, nOut); push({ kind: 'leaky-relu', name: name('leaky'), inputs: [cur], alpha: 0.2 }); ch = nOut; break;
      case 'dense-identity': dense(cur, ch, nOut); ch = nOut; break;
      case 'dense-bias-free': dense(cur, ch, nOut, false); relu(cur); ch = nOut; break;
      case 'dense-tanh': dense(cur, ch, nOut); push({ kind: 'activation', name: name('tanh'), inputs: [cur], fn: 'tanh' }); ch = nOut; break;
      case 'dense-residual': {
        const x = cur;
        const f = dense(relu(dense(x, ch, nOut)), nOut, ch);
        push({ kind: 'add', name: name('add'), inputs: [f, x] });
        relu(cur);
        break;
      }
      case 'dense-concat': {
        const x = cur;
        const a = relu(dense(x, ch, nOut));
        const b = dense(x, ch, 2);
        push({ kind: 'concat', name: name('cat'), inputs: [a, b] });
        ch = nOut + 2;
        break;
      }
    }
  }
  dense(cur, ch, int(1, 4));
  return { net, shape };
}
