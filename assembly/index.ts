// Hot loops only: kernels take byte pointers, counts and strides, and never allocate.
// The module also exports `memory`; the host allocates from its initial end upward.
export { accumulate } from "./accumulate";
export { scale } from "./scale";
export { scaleAccumulate } from "./scale-accumulate";
export { solveScales } from "./solve";
export { energy } from "./energy";
export { firstNonFinite } from "./finite";
export { zero } from "./zero";
