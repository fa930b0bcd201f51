/**
 * JSON trees for the model-file fuzzers: node paths, safe get / set / delete (keys such as
 * '__proto__' stay own data properties, as JSON.parse makes them), and a serializer whose
 * Raw markers emit text JSON.stringify cannot: 1e400 (JSON.parse reads Infinity), or
 * nesting 100,000 levels deep (JSON.stringify would overflow the stack).
 */

/** Literal JSON text spliced into the output of serializeTree. */
export class Raw {
  constructor(readonly text: string) {}
}

export type Key = string | number;
export type Path = Key[];

/** `depth` nested arrays (or objects {"a": ...}) around `inner`, as JSON text. */
export function deepText(depth: number, shape: 'array' | 'object', inner = '0'): string {
  return shape === 'array' ? `${'['.repeat(depth)}${inner}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}${inner}${'}'.repeat(depth)}`;
}

const isContainer = (v: unknown): v is Record<string, unknown> | unknown[] => v !== null && typeof v === 'object' && !(v instanceof Raw);

/** Every node below the root (depth-first, pre-order), with its path. */
export function allPaths(root: unknown): Path[] {
  const out: Path[] = [];
  const walk = (v: unknown, path: Path) => {
    if (!isContainer(v)) return;
    const keys: Key[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
    for (const k of keys) {
      const p = [...path, k];
      out.push(p);
      walk((v as Record<Key, unknown>)[k], p);
    }
  };
  walk(root, []);
  return out;
}

export function getAt(root: unknown, path: Path): unknown {
  let v = root;
  for (const k of path) {
    if (!isContainer(v)) return undefined;
    v = Object.prototype.hasOwnProperty.call(v, k) ? (v as Record<Key, unknown>)[k] : undefined;
  }
  return v;
}

/** Sets an own data property (never a prototype setter); false when the parent is no container. */
export function setAt(root: unknown, path: Path, value: unknown): boolean {
  const parent = getAt(root, path.slice(0, -1));
  if (!isContainer(parent) || path.length === 0) return false;
  Object.defineProperty(parent, path[path.length - 1], { value, writable: true, enumerable: true, configurable: true });
  return true;
}

export function deleteAt(root: unknown, path: Path): boolean {
  const parent = getAt(root, path.slice(0, -1));
  if (!isContainer(parent) || path.length === 0) return false;
  const k = path[path.length - 1];
  if (Array.isArray(parent) && typeof k === 'number') parent.splice(k, 1);
  else delete (parent as Record<Key, unknown>)[k];
  return true;
}

/** JSON text of `tree`; Raw markers are emitted verbatim. */
export function serializeTree(tree: unknown): string {
  const raws: string[] = [];
  const tag = `@@raw-${Math.random().toString(36).slice(2)}-`;
  const text = JSON.stringify(tree, (_key, v: unknown) => {
    if (v instanceof Raw) {
      raws.push(v.text);
      return `${tag}${raws.length - 1}`;
    }
    return v;
  }) ?? 'null';
  return raws.length === 0 ? text : text.replace(new RegExp(`"${tag}(\\d+)"`, 'g'), (_m, i: string) => raws[Number(i)]);
}

/** A deep copy without Raw markers resolved (the seed trees hold plain JSON only). */
export function cloneTree<T>(tree: T): T {
  return structuredClone(tree);
}
