// The GUI: login, five tabs, polling of /api/status and /api/logs once a second.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { csrf: null, schemas: null, config: null, mask: "********", editing: null, logSeq: 0, history: [], last: null };
const EXAMPLES = {
  mqtt: { name: "", type: "mqtt", url: "mqtt://broker:1883", topics: [{ topic: "sensors/+/temperature", qos: 1, format: "json", value_path: "value" }] },
  modbus: { name: "", type: "modbus", url: "modbus+tcp://plc:502", registers: [{ name: "temperature", table: "holding", address: 0, data_type: "float32" }] },
  opcua: { name: "", type: "opcua", endpoint: "opc.tcp://server:4840", nodes: [] },
};

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (state.csrf) headers["X-CSRF-Token"] = state.csrf;
  const answer = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  let data = {};
  try { data = await answer.json(); } catch (e) { /* empty body */ }
  if (answer.status === 401 && path !== "/api/login") showLogin();
  if (!answer.ok) {
    const detail = Array.isArray(data.detail) ? data.detail.map((d) => (typeof d === "string" ? d : `${(d.loc || []).join(".")}: ${d.msg}`)) : [String(data.detail || answer.statusText)];
    const error = new Error(detail.join("\n"));
    error.status = answer.status;
    throw error;
  }
  return data;
}

function say(el, text, ok) { el.textContent = text; el.className = "message " + (ok ? "ok" : "error"); }

function showLogin() {
  state.csrf = null;
  $("#app-view").hidden = true; $("#login-view").hidden = false;
}

async function login(event) {
  event.preventDefault();
  try {
    const session = await api("POST", "/api/login", { username: $("#login-user").value, password: $("#login-password").value });
    $("#login-password").value = "";
    $("#login-error").textContent = "";
    await enter(session);
  } catch (e) { $("#login-error").textContent = e.message; }
}

async function enter(session) {
  state.csrf = session.csrf;
  $("#user-name").textContent = session.user;
  state.schemas = await api("GET", "/api/schemas");
  const types = $("#new-source-type");
  types.innerHTML = "";
  for (const name of Object.keys(state.schemas.sources)) types.add(new Option(name, name));
  await reload();
  // Shown only once the forms hold the stored config: an edit made earlier would be overwritten by reload().
  $("#login-view").hidden = true; $("#app-view").hidden = false;
  showTab(location.hash.slice(1) || "zerobus");
}

async function reload() {
  const data = await api("GET", "/api/config");
  state.config = data.config; state.mask = data.mask;
  $("#config-error").hidden = !data.error; $("#config-error").textContent = data.error || "";
  renderSink(); renderSettings(); renderSources(); loadCerts(); loadAudit();
}

function showTab(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.hidden = tab.id !== `tab-${name}`;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  history.replaceState(null, "", `#${name}`);
}

// --- ZeroBus ------------------------------------------------------------------------------------------------
function renderSink() {
  const sink = state.config.sink || { type: "delta" };
  $("#sink-type").value = sink.type;
  drawSinkForm(sink);
}
function drawSinkForm(sink) {
  const defs = state.schemas.agent.$defs;
  const form = $("#sink-form"); form.innerHTML = "";
  const name = $("#sink-type").value === "zerobus" ? "ZerobusSinkSettings" : "DeltaSinkSettings";
  renderForm(form, defs[name], defs, sink.type === $("#sink-type").value ? sink : {}, state.mask);
}
function sinkValue() { return Object.assign(readForm($("#sink-form"), state.mask), { type: $("#sink-type").value }); }
async function saveSink() {
  try { await api("PUT", "/api/sink", sinkValue()); say($("#sink-message"), "saved and applied", true); await reload(); }
  catch (e) { say($("#sink-message"), e.message, false); }
}
async function testSink() {
  say($("#sink-message"), "testing...", true);
  try { say($("#sink-message"), (await api("POST", "/api/sink/test", sinkValue())).message, true); }
  catch (e) { say($("#sink-message"), e.message, false); }
}

// --- Data sources -------------------------------------------------------------------------------------------
function renderSources() {
  const body = $("#source-table tbody"); body.innerHTML = "";
  for (const source of state.config.sources || []) {
    const row = body.insertRow();
    row.dataset.source = source.name;
    row.innerHTML = `<td><span class="dot off"></span></td><td></td><td></td><td></td>
      <td><button class="edit">Edit</button> <button class="remove">Remove</button></td>`;
    row.cells[1].textContent = source.name; row.cells[2].textContent = source.type;
    row.cells[3].textContent = source.url || source.endpoint || "";
    row.querySelector(".edit").onclick = () => editSource(source);
    row.querySelector(".remove").onclick = () => removeSource(source.name);
  }
}
function editSource(source) {
  state.editing = source.name || null;
  $("#source-editor").hidden = false;
  $("#source-editor-title").textContent = source.name ? `Edit ${source.name}` : `New ${source.type} source`;
  $("#source-browse").hidden = source.type !== "opcua";
  $("#source-message").textContent = ""; $("#browse-result").innerHTML = "";
  const form = $("#source-form"); form.innerHTML = "";
  const schema = state.schemas.sources[source.type];
  renderForm(form, schema, schema.$defs || {}, source, state.mask);
}
function sourceValue() { return { original: state.editing, source: readForm($("#source-form"), state.mask) }; }
async function saveSource() {
  try {
    const edit = sourceValue();
    await api("POST", "/api/sources", edit);
    state.editing = edit.source.name;
    $("#source-editor-title").textContent = `Edit ${edit.source.name}`;
    say($("#source-message"), `saved; ${edit.source.name} is running with the new settings`, true);
    await reload();
  } catch (e) { say($("#source-message"), e.message, false); }
}
async function testSource() {
  say($("#source-message"), "testing...", true);
  try { say($("#source-message"), (await api("POST", "/api/sources/test", sourceValue())).message, true); }
  catch (e) { say($("#source-message"), e.message, false); }
}
async function browseSource(root = "i=85") {
  const out = $("#browse-result");
  try {
    const { nodes } = await api("POST", `/api/sources/browse?root=${encodeURIComponent(root)}`, sourceValue());
    out.innerHTML = "<h3>Nodes (click a variable to add it, an object to open it)</h3>";
    for (const node of nodes) {
      const b = document.createElement("button");
      b.textContent = `${node.node_class}: ${node.path} (${node.id})`;
      b.onclick = () => (node.node_class === "Variable" ? addNode(node.id) : browseSource(node.id));
      out.append(b, document.createElement("br"));
    }
  } catch (e) { say($("#source-message"), e.message, false); }
}
function addNode(id) {
  const area = document.querySelector('#source-form [data-path="nodes"]');
  const nodes = area.value.trim() ? JSON.parse(area.value) : [];
  nodes.push(id); area.value = JSON.stringify(nodes, null, 1);
}
async function removeSource(name) {
  if (!confirm(`Remove source ${name}? It stops at once.`)) return;
  try { await api("DELETE", `/api/sources/${encodeURIComponent(name)}`); await reload(); $("#source-editor").hidden = true; }
  catch (e) { alert(e.message); }
}
async function uploadCert() {
  const file = $("#cert-file").files[0];
  if (!file) { say($("#cert-message"), "choose a file first", false); return; }
  try {
    const answer = await api("POST", "/api/certs", { name: file.name, kind: $("#cert-kind").value, pem: await file.text() });
    say($("#cert-message"), `${answer.message}\npath: ${answer.path}`, true);
    loadCerts();
  } catch (e) { say($("#cert-message"), e.message, false); }
}
async function loadCerts() {
  const list = $("#cert-list"); list.innerHTML = "";
  for (const name of (await api("GET", "/api/certs")).files) list.appendChild(document.createElement("li")).textContent = name;
}

// --- Monitoring ---------------------------------------------------------------------------------------------
async function poll() {
  if (!state.csrf) return;
  let status;
  try { status = await api("GET", "/api/status"); } catch (e) { return; }
  const now = Date.now() / 1000;
  if (state.last) {
    const dt = Math.max(0.001, now - state.last.t);
    state.history.push([(status.records_read - state.last.read) / dt, (status.records_written - state.last.written) / dt]);
    if (state.history.length > 120) state.history.shift();
  }
  state.last = { t: now, read: status.records_read, written: status.records_written };
  $("#stat-read").textContent = status.records_read; $("#stat-written").textContent = status.records_written;
  $("#stat-queue").textContent = status.queue_depth; $("#stat-failed").textContent = status.records_failed;
  $("#stat-dropped").textContent = status.records_dropped;
  $("#stat-failed").title = Object.entries(status.records_failed_by_type || {}).map(([k, v]) => `${k}: ${v}`).join("\n");
  const sink = status.sink;
  $("#stat-sink").textContent = sink ? `${sink.type} ${sink.up ? "up" : "DOWN"}, breaker ${sink.breaker}` : "stopped";
  $("#stat-sink").title = (sink && sink.last_error) || "";
  $("#stat-sink").className = sink && !sink.up ? "bad" : "";
  $("#agent-state").textContent = status.running ? "agent running" : "agent stopped";
  $("#config-error").hidden = !status.config_error; $("#config-error").textContent = status.config_error || "";
  const body = $("#monitor-table tbody"); body.innerHTML = "";
  for (const [name, s] of Object.entries(status.sources)) {
    const row = body.insertRow();
    row.dataset.source = name;
    const cls = !s.enabled ? "off" : s.connected ? "up" : "down";
    row.innerHTML = `<td><span class="dot ${cls}" title="${cls === "up" ? "connected" : "not connected"}"></span> ${cls === "up" ? "connected" : "down"}</td><td></td><td></td><td class="read"></td><td class="rejected"></td><td></td><td></td>`;
    row.cells[1].textContent = name; row.cells[2].textContent = s.type; row.cells[3].textContent = s.records_read;
    row.cells[4].textContent = s.rejected || 0;
    row.cells[5].textContent = s.reconnects || 0; row.cells[6].textContent = s.last_error || "";
    const listed = document.querySelector(`#source-table tr[data-source="${CSS.escape(name)}"] .dot`);
    if (listed) listed.className = `dot ${cls}`;
  }
  drawLines($("#throughput-chart"), [state.history.map((p) => p[0]), state.history.map((p) => p[1])], ["#3d7bd9", "#1f9d55"], ["read/s", "written/s"]);
  let previous = 0;
  drawBars($("#latency-chart"), status.latency_buckets.map(([le, cumulative]) => {
    const bar = { label: le === "+Inf" ? "more" : le, count: cumulative - previous };
    previous = cumulative; return bar;
  }));
}

// --- Logs ---------------------------------------------------------------------------------------------------
function logQuery() { return `level=${$("#log-level").value}&q=${encodeURIComponent($("#log-search").value)}`; }
async function pollLogs(reset) {
  if (!state.csrf) return;
  if (reset) { state.logSeq = 0; state.logGen = (state.logGen || 0) + 1; $("#log-lines").innerHTML = ""; }
  const gen = state.logGen;
  $("#log-download").href = `/api/logs/download?${logQuery()}`;
  let data;
  try { data = await api("GET", `/api/logs?after=${state.logSeq}&${logQuery()}`); } catch (e) { return; }
  if (gen !== state.logGen || data.seq <= state.logSeq) return; // an answer to an older filter, or already shown
  const pre = $("#log-lines");
  for (const line of data.lines) {
    const span = document.createElement("span");
    span.className = `lvl-${line.level}`;
    span.textContent = `${new Date(line.ts * 1000).toISOString()} ${line.level.padEnd(7)} ${line.logger}: ${line.msg}\n`;
    pre.appendChild(span);
  }
  while (pre.childNodes.length > 3000) pre.removeChild(pre.firstChild);
  state.logSeq = data.seq;
  if (data.lines.length && $("#log-follow").checked) pre.scrollTop = pre.scrollHeight;
}

// --- Settings -----------------------------------------------------------------------------------------------
function renderSettings() { // every agent setting except the sink and the sources, which have their own tabs
  const agent = state.schemas.agent;
  const keys = Object.keys(agent.properties).filter((k) => !["sink", "sources"].includes(k));
  const schema = { properties: Object.fromEntries(keys.map((k) => [k, agent.properties[k]])) };
  const form = $("#settings-form"); form.innerHTML = "";
  renderForm(form, schema, agent.$defs, state.config, state.mask);
}
async function saveSettings() {
  try {
    const answer = await api("PUT", "/api/settings", readForm($("#settings-form"), state.mask));
    say($("#settings-message"), answer.changed.length ? `applied: ${answer.changed.join(", ")}` : "nothing changed", true);
    await reload();
  } catch (e) { say($("#settings-message"), e.message, false); }
}
async function changePassword() {
  try {
    await api("POST", "/api/password", { current: $("#pw-current").value, new: $("#pw-new").value });
    $("#pw-current").value = ""; $("#pw-new").value = "";
    say($("#pw-message"), "password changed", true);
  } catch (e) { say($("#pw-message"), e.message, false); }
}
async function loadAudit() {
  const body = $("#audit-table tbody"); body.innerHTML = "";
  for (const entry of (await api("GET", "/api/audit")).entries.reverse()) {
    const row = body.insertRow();
    for (const text of [entry.ts, entry.user, entry.action, JSON.stringify(entry.what)]) row.insertCell().textContent = text;
  }
}

// --- wiring -------------------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", async () => {
  $("#login-form").addEventListener("submit", login);
  $("#logout").onclick = async () => { try { await api("POST", "/api/logout"); } finally { showLogin(); } };
  for (const b of document.querySelectorAll("#tabs button")) b.onclick = () => showTab(b.dataset.tab);
  $("#sink-type").onchange = () => drawSinkForm(state.config.sink || {});
  $("#sink-save").onclick = saveSink; $("#sink-test").onclick = testSink;
  $("#source-add").onclick = () => editSource(structuredClone(EXAMPLES[$("#new-source-type").value] || { type: $("#new-source-type").value }));
  $("#source-save").onclick = saveSource; $("#source-test").onclick = testSource;
  $("#source-browse").onclick = () => browseSource(); $("#source-cancel").onclick = () => { $("#source-editor").hidden = true; };
  $("#cert-upload").onclick = uploadCert;
  $("#settings-save").onclick = saveSettings; $("#pw-save").onclick = changePassword;
  $("#log-level").onchange = () => pollLogs(true); $("#log-search").oninput = () => pollLogs(true);
  setInterval(poll, 1000); setInterval(() => pollLogs(false), 1000);
  try { await enter(await api("GET", "/api/session")); } catch (e) { showLogin(); }
});
