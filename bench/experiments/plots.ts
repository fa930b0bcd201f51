/** SVG plots of the results with Vega-Lite (compiled to Vega, rendered headless to SVG). */
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export interface Point { x: number; y: number; lo?: number; hi?: number; series: string }

async function render(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return `${svg}\n`;
}

/** Lines with points, one per series, and error bars from lo to hi where given. */
export function linePlot(points: Point[], o: { title: string; x: string; y: string; logX?: boolean; logY?: boolean; zeroY?: boolean }): Promise<string> {
  const x = { field: 'x', type: 'quantitative' as const, title: o.x, scale: o.logX ? { type: 'log' as const, base: 2 } : { zero: false }, axis: o.logX ? { values: [...new Set(points.map((p) => p.x))] } : {} };
  const y = { field: 'y', type: 'quantitative' as const, title: o.y, scale: o.logY ? { type: 'log' as const } : { zero: o.zeroY ?? false } };
  const color = { field: 'series', type: 'nominal' as const, title: null };
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    width: 480,
    height: 300,
    data: { values: points },
    layer: [
      { mark: { type: 'line', point: true }, encoding: { x, y, color } },
      ...(points.some((p) => p.lo !== undefined)
        ? [{ mark: { type: 'errorbar' as const, ticks: true }, encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color } }]
        : []),
    ],
  };
  return render(spec);
}
