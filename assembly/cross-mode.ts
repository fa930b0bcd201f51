// Which coordinate of an element (o, i, j) of the walked view picks its accumulator in accumulateScaled:
//   idx = (k / a) % b  with  k = o (Outer), j (Inner) or i (Unit: the view's own units).
// The one definition of the numbers; src/engine/backend.ts mirrors them as CrossMode, and
// test/assembly/cross-mode.test.ts checks that the two agree.
export const enum CrossMode {
  Outer = 0,
  Inner = 1,
  Unit = 2,
}
