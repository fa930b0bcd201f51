/**
 * Group normalization (Wu & He, 2018) as a tfjs layer, which tfjs lacks. Channels-last input
 * [batch, ..., C]; the C channels form `groups` groups of C / groups consecutive channels and
 *   y = (x - mean) / sqrt(var + epsilon) * gamma + beta,
 * with mean and (biased) variance taken per example and group, over the spatial axes and the
 * group's channels. No batch statistics: the output of an example never depends on the others.
 */
import * as tf from '@tensorflow/tfjs';

export interface GroupNormalizationArgs {
  groups: number;
  epsilon?: number;
  /** Learn gamma (default true) and beta (default true). */
  scale?: boolean;
  center?: boolean;
  name?: string;
  inputShape?: number[];
}

export class GroupNormalization extends tf.layers.Layer {
  static readonly className = 'GroupNormalization';
  readonly groups: number;
  readonly epsilon: number;
  readonly scale: boolean;
  readonly center: boolean;
  private gamma: tf.LayerVariable | null = null;
  private beta: tf.LayerVariable | null = null;

  constructor(args: GroupNormalizationArgs) {
    super(args);
    if (!Number.isInteger(args.groups) || args.groups < 1) throw new RangeError(`GroupNormalization: groups must be an integer >= 1, got ${args.groups}`);
    this.groups = args.groups;
    this.epsilon = args.epsilon ?? 1e-5;
    this.scale = args.scale ?? true;
    this.center = args.center ?? true;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = inputShape as tf.Shape;
    const channels = shape[shape.length - 1];
    if (shape.length < 2 || channels === null) throw new Error(`GroupNormalization '${this.name}': needs a known channel axis, got input shape [${shape.join(', ')}]`);
    if (channels % this.groups !== 0) throw new Error(`GroupNormalization '${this.name}': ${channels} channels do not split into ${this.groups} groups`);
    if (this.scale) this.gamma = this.addWeight('gamma', [channels], 'float32', tf.initializers.ones());
    if (this.center) this.beta = this.addWeight('beta', [channels], 'float32', tf.initializers.zeros());
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const shape = x.shape;
      const channels = shape[shape.length - 1];
      // [batch, ..., C] -> [batch, S, G, C/G]: statistics over axes 1 and 3.
      const grouped = x.reshape([shape[0], -1, this.groups, channels / this.groups]);
      const { mean, variance } = tf.moments(grouped, [1, 3], true);
      let y = tf.div(tf.sub(grouped, mean), tf.sqrt(tf.add(variance, this.epsilon))).reshape(shape);
      if (this.gamma) y = tf.mul(y, this.gamma.read());
      if (this.beta) y = tf.add(y, this.beta.read());
      return y;
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), groups: this.groups, epsilon: this.epsilon, scale: this.scale, center: this.center };
  }
}

tf.serialization.registerClass(GroupNormalization);

export const groupNormalization = (args: GroupNormalizationArgs) => new GroupNormalization(args);
