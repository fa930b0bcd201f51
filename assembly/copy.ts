// bytes bytes from src to dst (bulk-memory memory.copy; the regions do not overlap).
export function copy(dst: usize, src: usize, bytes: usize): void {
  memory.copy(dst, src, bytes);
}
