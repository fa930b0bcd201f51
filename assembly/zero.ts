// bytes bytes at ptr := 0 (bulk-memory memory.fill).
export function zero(ptr: usize, bytes: usize): void {
  memory.fill(ptr, 0, bytes);
}
