/**
 * tfjs models as files, for tests: a model saved by real tfjs (model.json and one weights.bin), and
 * a folder that enorm wrote loaded again by tf.loadLayersModel.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';

/** Saves `model` with tfjs's own serializer into `dir` (model.json + weights.bin); returns the model.json path. */
export async function saveTfjsFiles(model: tf.LayersModel, dir: string): Promise<string> {
  let files: { modelJson: object; weights: Uint8Array } | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    const parts = ([] as ArrayBuffer[]).concat(a.weightData ?? []);
    const weights = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    parts.reduce((at, p) => (weights.set(new Uint8Array(p), at), at + p.byteLength), 0);
    const modelJson = { format: a.format, generatedBy: a.generatedBy, convertedBy: a.convertedBy, modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] };
    files = { modelJson, weights };
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  await writeFile(join(dir, 'model.json'), JSON.stringify(files!.modelJson));
  await writeFile(join(dir, 'weights.bin'), files!.weights);
  return join(dir, 'model.json');
}

/** Loads the tfjs model that `dir/model.json` describes, with its first weights shard. */
export async function loadTfjsFiles(dir: string): Promise<tf.LayersModel> {
  const modelJson = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
  const bytes = await readFile(join(dir, modelJson.weightsManifest[0].paths[0]));
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs: modelJson.weightsManifest[0].weights, weightData }));
}
