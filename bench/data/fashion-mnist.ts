/**
 * Fashion-MNIST from the `fashion-mnist` registry package: 70,000 labelled 28x28 images of
 * clothing, 7,000 per class (one JSON file of 0-255 pixel rows per class), pixels scaled to [0, 1].
 * The package's class-0 file holds 7,002 rows, two of them empty; those two are dropped.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fromClasses, type ImageSet } from './images.js';

export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'] as const;

export function loadFashion(): ImageSet {
  const main = createRequire(import.meta.url).resolve('fashion-mnist');
  const classes = FASHION_CLASSES.map((_, label) => {
    const file = join(dirname(main), 'clothes', `${label}.json`);
    return (JSON.parse(readFileSync(file, 'utf8')) as { data: number[][] }).data.filter((image) => image.length > 0);
  });
  return fromClasses(classes, 255);
}
