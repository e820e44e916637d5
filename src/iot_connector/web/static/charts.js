// Two small hand-drawn <canvas> charts (no chart library: the GUI runs in a DMZ without internet).
"use strict";

// A "nice" step (1, 2 or 5 times a power of ten) so that about `count` steps cover `max`.
function niceStep(max, count) {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
}

function tickText(v) { return v >= 1000 ? `${+(v / 1000).toFixed(1)}k` : String(+v.toFixed(2)); }

// Lines over a time axis: `times` in seconds since the epoch (shared by all series), the last 2 minutes.
function drawLines(canvas, times, series, colors, labels) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, left = 44, right = 10, top = 24, bottom = 26;
  ctx.clearRect(0, 0, w, h);
  const step = niceStep(Math.max(1, ...series.flat()), 4);
  const max = step * Math.max(1, Math.ceil(Math.max(1, ...series.flat()) / step));
  const end = times.length ? times[times.length - 1] : Date.now() / 1000;
  const start = end - 120;
  const x = (t) => left + ((w - left - right) * (t - start)) / 120;
  const y = (v) => h - bottom - ((h - top - bottom) * v) / max;
  ctx.font = "11px sans-serif"; ctx.lineWidth = 1;
  for (let v = 0; v <= max + 1e-9; v += step) { // value ticks
    ctx.strokeStyle = "#e6eaee"; ctx.beginPath(); ctx.moveTo(left, y(v)); ctx.lineTo(w - right, y(v)); ctx.stroke();
    ctx.fillStyle = "#5b6878"; ctx.textAlign = "right"; ctx.fillText(tickText(v), left - 4, y(v) + 4);
  }
  ctx.textAlign = "center";
  for (let t = Math.ceil(start / 30) * 30; t <= end; t += 30) { // time ticks every 30 s, clock time
    ctx.strokeStyle = "#e6eaee"; ctx.beginPath(); ctx.moveTo(x(t), top); ctx.lineTo(x(t), h - bottom); ctx.stroke();
    const clock = new Date(t * 1000).toTimeString().slice(0, 8);
    ctx.fillStyle = "#5b6878"; ctx.fillText(clock, Math.min(Math.max(x(t), left + 24), w - right - 24), h - bottom + 14);
  }
  series.forEach((points, s) => {
    ctx.strokeStyle = colors[s]; ctx.lineWidth = 2; ctx.beginPath();
    points.forEach((v, i) => { if (i === 0) ctx.moveTo(x(times[i]), y(v)); else ctx.lineTo(x(times[i]), y(v)); });
    ctx.stroke();
    ctx.textAlign = "left"; ctx.fillStyle = colors[s]; ctx.fillText(labels[s], left + 8 + s * 90, 14);
  });
  ctx.fillStyle = "#5b6878"; ctx.textAlign = "right"; ctx.fillText("last 2 minutes (local time)", w - right, 14);
  ctx.textAlign = "left";
}

// Bars with a label under each; a label is drawn only where it does not overlap the previous one.
function drawBars(canvas, bars) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, left = 44, right = 10, top = 24, bottom = 26;
  ctx.clearRect(0, 0, w, h);
  const step = niceStep(Math.max(1, ...bars.map((b) => b.count)), 4);
  const max = step * Math.max(1, Math.ceil(Math.max(1, ...bars.map((b) => b.count)) / step));
  const y = (v) => h - bottom - ((h - top - bottom) * v) / max;
  const bw = (w - left - right) / Math.max(1, bars.length);
  ctx.font = "11px sans-serif";
  for (let v = 0; v <= max + 1e-9; v += step) {
    ctx.strokeStyle = "#e6eaee"; ctx.beginPath(); ctx.moveTo(left, y(v)); ctx.lineTo(w - right, y(v)); ctx.stroke();
    ctx.fillStyle = "#5b6878"; ctx.textAlign = "right"; ctx.fillText(tickText(v), left - 4, y(v) + 4);
  }
  ctx.textAlign = "center";
  let labelEnd = -Infinity;
  bars.forEach((bar, i) => {
    const cx = left + i * bw + bw / 2;
    ctx.fillStyle = "#3d7bd9";
    ctx.fillRect(left + i * bw + 1, y(bar.count), Math.max(1, bw - 2), y(0) - y(bar.count));
    ctx.fillStyle = "#5b6878";
    const width = ctx.measureText(bar.label).width;
    if (cx - width / 2 > labelEnd + 10) { ctx.fillText(bar.label, cx, h - bottom + 14); labelEnd = cx + width / 2; }
  });
  ctx.textAlign = "left";
  ctx.fillText("batches per latency bucket (upper bound); counts on the left axis", left, 14);
}
