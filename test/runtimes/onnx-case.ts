/**
 * enorm/onnx in a runtime: read the fixture model (test/runtimes/fixtures/torch-conv.onnx, written
 * by scripts/onnx-runtime-fixture.ts), balance it with the runtime's enorm, write it, read it back.
 * Only the rescaled tensors' bytes may change, and the energy must fall.
 */
import type { Enorm } from './suite.ts';

interface OnnxModelLike { network: Parameters<Enorm['balance']>[0]; weights: readonly unknown[] }
export interface EnormOnnx {
  readOnnxModel(bytes: Uint8Array): OnnxModelLike;
  writeOnnxModel(model: OnnxModelLike): Uint8Array;
}

export async function onnxCase(enorm: Enorm, onnx: EnormOnnx, bytes: Uint8Array): Promise<void> {
  const model = onnx.readOnnxModel(bytes);
  const report = await enorm.balance(model.network, { c: 1 });
  if (!(report.energyAfter < 0.99 * report.energyBefore)) throw new Error(`energy ${report.energyBefore} -> ${report.energyAfter}`);
  const written = onnx.writeOnnxModel(model);
  if (written.length !== bytes.length) throw new Error(`written ${written.length} bytes, read ${bytes.length}`);
  let changed = 0;
  for (let i = 0; i < bytes.length; i++) if (written[i] !== bytes[i]) changed++;
  if (changed === 0) throw new Error('no byte changed');
  // Read back: the same network, holding the balanced values.
  const again = onnx.readOnnxModel(written);
  if (again.network.length !== model.network.length) throw new Error('the written model reads back to another network');
  const second = await enorm.balance(again.network, { c: 1 });
  if (!(Math.abs(second.energyBefore - report.energyAfter) <= 1e-5 * report.energyAfter)) {
    throw new Error(`read back energy ${second.energyBefore}, balanced ${report.energyAfter}`);
  }
}
