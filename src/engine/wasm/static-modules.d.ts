/** Resolved by scripts/bundle.mjs to the shipped .wasm files, which the runtime compiles on import. */
declare module 'enorm-wasm:*' {
  const module: WebAssembly.Module;
  export default module;
}
