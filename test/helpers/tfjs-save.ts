/**
 * tfjs models as files, for tests: a model saved by real tfjs (model.json and one weights.bin), and
 * a folder that enorm wrote loaded again by tf.loadLayersModel.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';

/** What tfjs's own serializer gives for `model`: model.json (a plain copy, one weights.bin shard) and the weight bytes, concatenated. */
export async function tfjsArtifacts(model: tf.LayersModel): Promise<{ modelJson: Record<string, any>; weightData: ArrayBuffer }> {
  let saved: { modelJson: Record<string, any>; weightData: ArrayBuffer } | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    const parts = ([] as ArrayBuffer[]).concat(a.weightData ?? []);
    const weights = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    parts.reduce((at, p) => (weights.set(new Uint8Array(p), at), at + p.byteLength), 0);
    const modelJson = { format: a.format, generatedBy: a.generatedBy, convertedBy: a.convertedBy, modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] };
    saved = { modelJson: JSON.parse(JSON.stringify(modelJson)), weightData: weights.buffer };
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return saved!;
}

/** Saves `model` with tfjs's own serializer into `dir` (model.json + weights.bin); returns the model.json path. */
export async function saveTfjsFiles(model: tf.LayersModel, dir: string): Promise<string> {
  const { modelJson, weightData } = await tfjsArtifacts(model);
  await writeFile(join(dir, 'model.json'), JSON.stringify(modelJson));
  await writeFile(join(dir, 'weights.bin'), new Uint8Array(weightData));
  return join(dir, 'model.json');
}

/** Loads the tfjs model that `dir/model.json` describes, with its first weights shard. */
export async function loadTfjsFiles(dir: string): Promise<tf.LayersModel> {
  const modelJson = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
  const bytes = await readFile(join(dir, modelJson.weightsManifest[0].paths[0]));
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs: modelJson.weightsManifest[0].weights, weightData }));
}
