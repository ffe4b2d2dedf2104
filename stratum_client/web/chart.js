// A small SVG line chart: no library, no network. drawChart(title, points) returns a
// <div class="chart"> whose <svg> holds one <circle> per data point.
"use strict";
const SVG = "http://www.w3.org/2000/svg";

function svgElement(name, attributes) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  return element;
}

function drawChart(title, points) {
  const box = document.createElement("div");
  box.className = "chart";
  box.dataset.series = title;
  const heading = document.createElement("h3");
  const last = points.length ? points[points.length - 1][1] : null;
  heading.textContent = last === null ? title : `${title}: ${Number(last.toPrecision(4))}`;
  box.appendChild(heading);
  const width = 400, height = 120, pad = 28;
  const svg = svgElement("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
  if (points.length) {
    const times = points.map((p) => p[0]), values = points.map((p) => p[1]);
    const t0 = Math.min(...times), t1 = Math.max(...times);
    let v0 = Math.min(...values), v1 = Math.max(...values);
    if (v0 === v1) { v0 -= 1; v1 += 1; }
    const x = (t) => pad + (t1 === t0 ? (width - pad) / 2 : ((t - t0) / (t1 - t0)) * (width - pad - 4));
    const y = (v) => height - 14 - ((v - v0) / (v1 - v0)) * (height - 24);
    svg.appendChild(svgElement("polyline", {
      points: points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" "),
    }));
    for (const p of points) svg.appendChild(svgElement("circle", { cx: x(p[0]), cy: y(p[1]), r: 1.8 }));
    const label = (text, px, py) => {
      const t = svgElement("text", { x: px, y: py });
      t.textContent = text;
      svg.appendChild(t);
    };
    label(Number(v1.toPrecision(3)), 0, 12);
    label(Number(v0.toPrecision(3)), 0, height - 14);
    label(new Date(t0 * 1000).toLocaleTimeString(), pad, height - 2);
    label(new Date(t1 * 1000).toLocaleTimeString(), width - 70, height - 2);
  }
  box.appendChild(svg);
  return box;
}
