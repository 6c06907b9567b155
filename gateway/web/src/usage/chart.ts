//! The per-day chart of the usage view: Chart.js stacked bars, one data set
//! per model, colours from the theme's `--chart-*` variables (read when
//! drawing, so the dark and light themes both apply).

import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from 'chart.js';

import { h } from '../app/dom';
import type { UsageReport } from './api';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

export type Metric = 'cost' | 'tokens';

const PALETTE = 8;

export class StackedChart {
  readonly element: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private chart: Chart<'bar'> | null = null;

  constructor() {
    this.canvas = h('canvas', { testid: 'usage-chart', attrs: { role: 'img', 'aria-label': 'Cost per day, stacked by model' } });
    this.element = h('div', { class: 'usage-chart' }, this.canvas);
  }

  draw(report: UsageReport, days: string[], metric: Metric): void {
    const style = getComputedStyle(this.element);
    const color = (name: string): string => style.getPropertyValue(name).trim();
    const models = [...new Set(report.groups.flatMap((g) => g.models.map((m) => m.model)))].sort();
    const byDay = new Map(report.groups.map((g) => [g.key, g]));
    const datasets = models.map((model, i) => ({
      label: model,
      backgroundColor: color(`--chart-${(i % PALETTE) + 1}`),
      data: days.map((day) => {
        const entry = byDay.get(day)?.models.find((m) => m.model === model);
        if (!entry) return 0;
        return metric === 'cost' ? (entry.costUsd ?? 0) : entry.tokens.total;
      }),
    }));
    this.canvas.setAttribute('aria-label', `${metric === 'cost' ? 'Cost' : 'Tokens'} per day, stacked by model`);
    this.element.dataset.metric = metric;
    this.element.dataset.series = String(datasets.length);
    this.destroy();
    Chart.defaults.color = color('--muted');
    Chart.defaults.borderColor = color('--border');
    this.chart = new Chart(this.canvas, {
      type: 'bar',
      data: { labels: days, datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          x: { stacked: true, ticks: { maxRotation: 0, autoSkipPadding: 12 } },
          y: {
            stacked: true,
            beginAtZero: true,
            ticks: { callback: (v) => (metric === 'cost' ? `$${Number(v).toFixed(2)}` : Intl.NumberFormat(undefined, { notation: 'compact' }).format(Number(v))) },
          },
        },
        plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
      },
    });
  }

  destroy(): void {
    this.chart?.destroy();
    this.chart = null;
  }
}
