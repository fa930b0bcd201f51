// Hot loops only: kernels take byte pointers, counts and strides, and never allocate.
// The module also exports `memory`; the host allocates from its initial end upward.
export { accumulate } from "./accumulate";
export { scale } from "./scale";
export { accumulateScaled } from "./accumulate-scaled";
export { scaleBoth } from "./scale-both";
export { solve } from "./solve";
export { energy } from "./energy";
export { firstNonFinite } from "./finite";
export { zero } from "./zero";
export { fill } from "./fill";
export { copy } from "./copy";
