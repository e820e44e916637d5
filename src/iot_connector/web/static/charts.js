// Two small hand-drawn <canvas> charts (no chart library: the GUI runs in a DMZ without internet).
"use strict";

function drawLines(canvas, series, colors, labels) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 36;
  ctx.clearRect(0, 0, w, h);
  const max = Math.max(1, ...series.flat());
  ctx.strokeStyle = "#dde3e9"; ctx.fillStyle = "#5b6878"; ctx.font = "11px sans-serif";
  for (let i = 0; i <= 4; i++) {
    const y = h - pad + (-(h - 2 * pad) * i) / 4;
    ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(w - 8, y); ctx.stroke();
    ctx.fillText(String(Math.round((max * i) / 4)), 2, y + 4);
  }
  series.forEach((points, s) => {
    ctx.strokeStyle = colors[s]; ctx.lineWidth = 2; ctx.beginPath();
    points.forEach((v, i) => {
      const x = pad + ((w - pad - 8) * i) / Math.max(1, points.length - 1);
      const y = h - pad - ((h - 2 * pad) * v) / max;
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
    ctx.fillStyle = colors[s]; ctx.fillText(labels[s], pad + 8 + s * 110, 14);
  });
  ctx.fillStyle = "#5b6878"; ctx.fillText("last 2 minutes", w - 90, h - 8);
}

function drawBars(canvas, bars) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 36;
  ctx.clearRect(0, 0, w, h);
  const max = Math.max(1, ...bars.map((b) => b.count));
  const bw = (w - pad - 8) / Math.max(1, bars.length);
  ctx.font = "10px sans-serif";
  bars.forEach((bar, i) => {
    const bh = ((h - 2 * pad) * bar.count) / max;
    ctx.fillStyle = "#3d7bd9";
    ctx.fillRect(pad + i * bw + 2, h - pad - bh, bw - 4, bh);
    ctx.fillStyle = "#5b6878";
    ctx.fillText(bar.label, pad + i * bw + 2, h - pad + 12);
    if (bar.count) ctx.fillText(String(bar.count), pad + i * bw + 2, h - pad - bh - 3);
  });
  ctx.fillText("batches per latency bucket (seconds, upper bound)", pad, 14);
}
