// A small SVG line chart of samples over time: series on a left axis, and optionally one on a
// right axis (replicas against a metric). No chart library: one view, a few hundred points.
export interface Series {
  key: string;
  label: string;
  color: string;
  dashed?: boolean;
  right?: boolean;
}

const W = 720;
const H = 220;
const PAD = 36;

export function Chart({
  id,
  samples,
  series,
}: {
  id: string;
  samples: Record<string, number>[];
  series: Series[];
}) {
  if (samples.length < 2) {
    return (
      <svg id={id} class="chart" viewBox={`0 0 ${W} ${H}`} data-points={samples.length}>
        <text x={W / 2} y={H / 2} text-anchor="middle">
          collecting samples...
        </text>
      </svg>
    );
  }
  const t0 = samples[0]["t"];
  const t1 = samples[samples.length - 1]["t"];
  const x = (t: number) => PAD + ((t - t0) / Math.max(1, t1 - t0)) * (W - 2 * PAD);
  const maxOf = (right: boolean) => {
    let m = 0;
    for (const s of series.filter((s) => !!s.right === right)) {
      for (const p of samples) if (Number.isFinite(p[s.key])) m = Math.max(m, p[s.key]);
    }
    return m > 0 ? m * 1.15 : 1;
  };
  const maxL = maxOf(false);
  const maxR = maxOf(true);
  const path = (s: Series) => {
    const max = s.right ? maxR : maxL;
    let d = "";
    let pen = false;
    for (const p of samples) {
      const v = p[s.key];
      if (!Number.isFinite(v)) {
        pen = false;
        continue;
      }
      const y = H - PAD - (v / max) * (H - 2 * PAD);
      d += `${pen ? "L" : "M"}${x(p["t"]).toFixed(1)},${y.toFixed(1)}`;
      pen = true;
    }
    return d;
  };
  return (
    <svg id={id} class="chart" viewBox={`0 0 ${W} ${H}`} data-points={samples.length}>
      <line x1={PAD} y1={H - PAD} x2={W - PAD} y2={H - PAD} stroke="#d1d5db" />
      <text x={PAD - 4} y={PAD} text-anchor="end" font-size="10">
        {maxL.toFixed(maxL < 10 ? 2 : 0)}
      </text>
      <text x={W - PAD + 4} y={PAD} font-size="10">
        {maxR.toFixed(0)}
      </text>
      {series.map((s) => (
        <path
          d={path(s)}
          fill="none"
          stroke={s.color}
          stroke-width="2"
          stroke-dasharray={s.dashed ? "5,4" : undefined}
          data-series={s.key}
        />
      ))}
      {series.map((s, i) => (
        <text x={PAD + i * 120} y={H - 8} font-size="11" fill={s.color}>
          {s.label}
          {s.right ? " (right)" : ""}
        </text>
      ))}
    </svg>
  );
}
