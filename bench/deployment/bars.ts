/**
 * Grouped bar charts with Vega-Lite, rendered headless to SVG (as bench/experiments/plots.ts does for
 * its line plots): one panel per group, one cluster of bars per cell, one bar per series.
 */
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export interface Bar { group: string; cell: string; series: string; y: number }

export async function groupedBars(bars: Bar[], o: { title: string; y: string }): Promise<string> {
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    data: { values: bars.filter((b) => Number.isFinite(b.y)) },
    facet: { row: { field: 'group', type: 'nominal', title: null, sort: [...new Set(bars.map((b) => b.group))] } },
    spec: {
      width: 560,
      height: 160,
      mark: 'bar',
      encoding: {
        x: { field: 'cell', type: 'nominal', title: null, sort: [...new Set(bars.map((b) => b.cell))], axis: { labelAngle: -30 } },
        xOffset: { field: 'series', type: 'nominal', sort: ['before', 'after'] },
        y: { field: 'y', type: 'quantitative', title: o.y },
        color: { field: 'series', type: 'nominal', title: null, sort: ['before', 'after'] },
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return `${svg}\n`;
}
