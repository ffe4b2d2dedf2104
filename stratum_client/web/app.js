// The dashboard: polls /api/dashboard and /api/history, follows /api/ws, and sends the
// token-protected writes. Every series /api/history returns gets a chart, so sensors that
// boards add later (temperatures, power) appear without a change here.
"use strict";
const TITLES = {
  hashrate: "Hashrate (GH/s)", accepted: "Accepted shares", rejected: "Rejected shares",
  errorPercentage: "Hardware errors (%)", asicTemp: "Chip temperature (°C)", power: "Power (W)",
  jPerTh: "Efficiency (J/TH)", pool: "Active pool", chipsAlive: "Chips alive",
  asicVoltage: "Core voltage (mV)", bestDiff: "Best share", stale: "Stale shares",
};
const SKIP = new Set(["hashrate_1m"]);
const $ = (id) => document.getElementById(id);
const fixed = (value, digits = 2) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));
// Three significant digits, so an emulated chain's 0.0004 GH/s does not read as 0.00.
const sig = (value) => {
  if (value === null || value === undefined) return "–";
  const n = Number(value);
  return Math.abs(n) >= 1000 || n === 0 ? n.toFixed(n === 0 ? 0 : 1) : String(Number(n.toPrecision(3)));
};

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
}

function showSummary(d) {
  $("host").textContent = d.hostname;
  document.title = `${d.hostname} – stratum-client`;
  $("mining").textContent = d.mining;
  $("mining").className = d.mining === "paused" ? "badge paused" : "badge";
  $("hr1m").textContent = sig(d.hashrate["1m"]);
  $("hr10m").textContent = sig(d.hashrate["10m"]);
  $("hr1h").textContent = sig(d.hashrate["1h"]);
  $("accepted").textContent = d.shares.accepted;
  $("rejected").textContent = d.shares.rejected;
  $("best").textContent = d.bestShareValue >= 1 ? d.bestShare : sig(d.bestShareValue);
  const reasons = $("reasons");
  reasons.replaceChildren(...d.shares.reasons.map((r) => {
    const li = document.createElement("li");
    li.textContent = `${r.reason}: ${r.count}`;
    return li;
  }));
  showPools(d.pools);
  showChains(d.chains);
  showEnergy(d.energy);
}

function showPools(pools) {
  const body = $("pools").tBodies[0];
  body.replaceChildren();
  for (const p of pools) {
    const row = body.insertRow();
    cell(row, p.index);
    cell(row, p.url);
    cell(row, p.state, `state-${p.state}`);
    cell(row, sig(p.difficulty));
    cell(row, p.accepted);
    cell(row, p.rejected);
    cell(row, p.lastError || "");
  }
}

function showChains(chains) {
  const box = $("chains");
  box.replaceChildren(...chains.map((c) => {
    const div = document.createElement("div");
    div.className = "chain";
    const head = document.createElement("div");
    const temp = c.temperature === null ? "" : `, ${fixed(c.temperature, 1)} °C`;
    const power = c.power === null ? "" : `, ${fixed(c.power, 1)} W`;
    head.textContent = `${c.name} (${c.chips} × ${c.model}) ${c.status}: ${sig(c.hashrate)} GH/s at ` +
      `${fixed(c.frequency, 0)} MHz, ${c.chipsAlive}/${c.chips} chips alive, ` +
      `${c.accepted} accepted, ${c.hwErrors} HW errors${temp}${power}`;
    div.appendChild(head);
    const chips = document.createElement("div");
    chips.className = "chips";
    for (const chip of c.chipList) {
      const span = document.createElement("span");
      span.className = chip.alive ? "chip ok" : "chip bad";
      span.textContent = `#${chip.index} ${chip.nonces} nonces, ${chip.hwErrors} err`;
      chips.appendChild(span);
    }
    div.appendChild(chips);
    return div;
  }));
}

function showEnergy(e) {
  const box = $("energy");
  if (!e) return;
  const lines = [
    `${fixed(e.energyKwh, 4)} kWh: ${fixed(e.surplusKwh, 4)} clean, ${fixed(e.gridKwh, 4)} grid`,
    `clean share ${fixed(e.cleanPct, 1)} %`,
    `${fixed(e.jPerTh, 1)} J/TH`,
    `${fixed(e.gPerTh, 3)} g CO2/TH`,
  ];
  box.replaceChildren(...lines.map((text) => {
    const p = document.createElement("p");
    p.textContent = text;
    return p;
  }));
}

function showHistory(h) {
  const names = Object.keys(h.series).filter((n) => !SKIP.has(n));
  names.sort((a, b) => (a in TITLES ? 0 : 1) - (b in TITLES ? 0 : 1) || a.localeCompare(b));
  $("charts").replaceChildren(...names.map((n) => drawChart(TITLES[n] || n, h.series[n])));
}

async function poll(path, show) {
  try {
    const reply = await fetch(path, { cache: "no-store" });
    if (reply.ok) show(await reply.json());
  } catch (err) {
    console.warn(path, err);
  }
}

function followLog() {
  const log = $("log");
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/ws`);
  socket.onmessage = (message) => {
    log.textContent += `${message.data}\n`;
    const lines = log.textContent.split("\n");
    if (lines.length > 500) log.textContent = lines.slice(-500).join("\n");
    log.scrollTop = log.scrollHeight;
  };
  socket.onclose = () => setTimeout(followLog, 3000);
}

async function write(method, path, body) {
  const result = $("control-result");
  const token = $("token").value;
  localStorage.setItem("stratum-client-token", token);
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const reply = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
    const data = await reply.json();
    result.textContent = `${reply.status}: ${data.message || data.error}`;
    result.className = reply.ok ? "result" : "result error";
  } catch (err) {
    result.textContent = String(err);
    result.className = "result error";
  }
  poll("/api/dashboard", showSummary);
}

$("token").value = localStorage.getItem("stratum-client-token") || "";
$("pause").onclick = () => write("POST", "/api/system/pause");
$("resume").onclick = () => write("POST", "/api/system/resume");
$("setfreq").onclick = () => write("PATCH", "/api/system", { frequency: Number($("mhz").value) });
const every = (seconds, path, show) => { poll(path, show); setInterval(() => poll(path, show), seconds * 1000); };
every(3, "/api/dashboard", showSummary);
every(10, "/api/history", showHistory);
followLog();
