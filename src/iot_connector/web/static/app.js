// The GUI: login, five tabs, polling of /api/status and /api/logs once a second.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { browseNames: {}, browsePath: [], csrf: null, schemas: null, config: null, mask: "********", editing: null, logSeq: 0, history: [], last: null, perSource: {}, watch: 0 };
const SINK_BASIC = new Set(["type", "path", "workspace_url", "zerobus_endpoint", "client_id", "client_secret", "table", "proxy"]);
// The fields of a source shown at once; every other one is under "Advanced".
const BASIC = new Set(["name", "enabled", "url", "endpoint", "unit_id", "poll_interval_s", "publishing_interval_ms", "mode",
  "username", "password", "ca_file", "cert_file", "key_file", "security_policy", "security_mode", "trusted_server_certs",
  "topics", "registers", "nodes"]);
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

// ok: true (green), false (red), or "warn" / "pending"
function say(el, text, ok) { el.textContent = text; el.className = "message " + (ok === true ? "ok" : ok === false ? "error" : ok); }

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
  renderForm(form, defs[name], defs, sink.type === $("#sink-type").value ? sink : {}, state.mask, "", SINK_BASIC);
}
function sinkValue() { return Object.assign(readForm($("#sink-form"), state.mask), { type: $("#sink-type").value }); }
async function saveSink() {
  try { await api("PUT", "/api/sink", sinkValue()); await reload(); say($("#sink-message"), "saved and applied", true); }
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
    row.innerHTML = `<td class="nowrap"><span class="dot off"></span> <span class="state">-</span></td><td class="nowrap"></td><td></td><td></td>
      <td class="actions"><button class="edit">Edit</button> <button class="tags">Live values</button> <button class="remove">Remove</button></td>`;
    row.cells[1].textContent = source.name; row.cells[2].textContent = source.type;
    row.cells[3].textContent = source.url || source.endpoint || "";
    row.querySelector(".edit").onclick = () => editSource(source);
    row.querySelector(".tags").onclick = () => showTags(source.name);
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
  renderForm(form, schema, schema.$defs || {}, source, state.mask, "", BASIC);
  if (source.type === "mqtt") addTlsSwitch(form);
}
// MQTT: a TLS checkbox instead of knowing that it means mqtts://; the certificate pickers show only with TLS.
function addTlsSwitch(form) {
  const url = form.querySelector('[data-path="url"]');
  const label = document.createElement("label");
  label.className = "check";
  const box = document.createElement("input");
  box.type = "checkbox"; box.id = "mqtt-tls";
  label.append(box, "TLS (mqtts://, port 8883)");
  label.appendChild(helpText("encrypts the connection; pick the broker's CA below (upload it under Certificates first)"));
  url.closest("label").after(label);
  const certs = ["ca_file", "cert_file", "key_file"].map((k) => form.querySelector(`[data-path="${k}"]`).closest("label"));
  const sync = () => {
    box.checked = url.value.startsWith("mqtts://");
    for (const l of certs) l.hidden = !box.checked;
  };
  box.onchange = () => {
    const rest = url.value.replace(/^mqtts?:\/\//, "");
    url.value = (box.checked ? "mqtts://" : "mqtt://") + rest.replace(/:1883$/, box.checked ? ":8883" : ":1883").replace(/:8883$/, box.checked ? ":8883" : ":1883");
    if (!box.checked) for (const l of certs) l.querySelector("[data-path]").value = "";
    sync();
  };
  url.addEventListener("input", sync);
  sync();
}
function sourceValue() { return { original: state.editing, source: readForm($("#source-form"), state.mask) }; }
async function saveSource() {
  try {
    const edit = sourceValue();
    await api("POST", "/api/sources", edit);
    state.editing = edit.source.name;
    $("#source-editor-title").textContent = `Edit ${edit.source.name}`;
    await reload();
    if (edit.source.enabled === false) say($("#source-message"), `saved; ${edit.source.name} is disabled`, true);
    else await watchSource(edit.source.name);
  } catch (e) { say($("#source-message"), e.message, false); }
}
// After a save: say what the source really does (connecting, connected, or the error it keeps retrying on).
async function watchSource(name) {
  const el = $("#source-message");
  const watch = ++state.watch;
  say(el, `saved; ${name} is connecting...`, "pending");
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline && watch === state.watch) {
    let s;
    try { s = (await api("GET", "/api/status")).sources[name]; } catch (e) { return; }
    if (s && s.connected) { say(el, `saved; ${name} is connected and running`, true); return; }
    if (s && s.last_error) { say(el, `saved, but ${name} cannot connect: ${s.last_error} (it keeps retrying)`, false); return; }
    await new Promise((r) => setTimeout(r, 400));
  }
  if (watch === state.watch) say(el, `saved; ${name} has not connected within 15 s (it keeps trying)`, "warn");
}
async function testSource() {
  say($("#source-message"), "testing...", true);
  try {
    const answer = await api("POST", "/api/sources/test", sourceValue());
    say($("#source-message"), (answer.warning ? "warning: " : "") + answer.message, answer.warning ? "warn" : true);
  }
  catch (e) { say($("#source-message"), e.message, false); }
}
async function browseSource(root = "i=85") {
  const out = $("#browse-result");
  try {
    const { nodes } = await api("POST", `/api/sources/browse?root=${encodeURIComponent(root)}`, sourceValue());
    out.innerHTML = "<h3>Nodes (click a variable to add it, an object to open it)</h3>";
    const crumbs = document.createElement("div");
    crumbs.className = "crumbs";
    const at = state.browsePath.findIndex((c) => c.id === root);
    if (root === "i=85") state.browsePath = [];
    else if (at >= 0) state.browsePath = state.browsePath.slice(0, at + 1);
    else state.browsePath.push({ id: root, name: state.browseNames[root] || root });
    for (const c of [{ id: "i=85", name: "Objects" }, ...state.browsePath]) {
      const b = document.createElement("button");
      b.className = "crumb"; b.textContent = c.name; b.onclick = () => browseSource(c.id);
      crumbs.append(b, " / ");
    }
    out.appendChild(crumbs);
    const seen = new Set();
    for (const node of nodes) {
      if (seen.has(node.id)) continue;
      seen.add(node.id);
      state.browseNames[node.id] = node.path.split("/").pop();
      const b = document.createElement("button");
      b.className = "node";
      b.textContent = `${node.node_class}: ${node.path} (${node.id})`;
      b.onclick = () => (node.node_class === "Variable" ? addNode(node.id) : browseSource(node.id));
      out.append(b, document.createElement("br"));
    }
  } catch (e) { say($("#source-message"), e.message, false); }
}
function addNode(id) {
  const editor = document.querySelector('#source-form [data-path="nodes"]');
  const known = [...editor.querySelectorAll('[data-col="id"]')].map((input) => input.value);
  if (!known.includes(id)) editor._addRow({ id });
}
async function removeSource(name) {
  if (!confirm(`Remove source ${name}? It stops at once.`)) return;
  try { await api("DELETE", `/api/sources/${encodeURIComponent(name)}`); await reload(); $("#source-editor").hidden = true; }
  catch (e) { alert(e.message); }
}
async function uploadCert() {
  const file = $("#cert-file").files[0];
  if (!file) { say($("#cert-message"), "choose a file first", false); return; }
  if (forms.certs.includes(file.name) && !confirm(`${file.name} exists; sources using it will use the new file after their next connect. Overwrite?`)) return;
  try {
    const answer = await api("POST", "/api/certs", { name: file.name, kind: $("#cert-kind").value, pem: await file.text() });
    say($("#cert-message"), `${answer.message}\npath: ${answer.path}`, true);
    loadCerts();
  } catch (e) { say($("#cert-message"), e.message, false); }
}
async function loadCerts() {
  const answer = await api("GET", "/api/certs");
  forms.certs = answer.files; forms.certsDir = answer.dir;
  const paths = $("#cert-paths"); paths.innerHTML = "";
  for (const name of answer.files) paths.appendChild(new Option(name, `${answer.dir}/${name}`));
  const list = $("#cert-list"); list.innerHTML = "";
  for (const name of answer.files) {
    const item = list.appendChild(document.createElement("li"));
    item.dataset.cert = name;
    const title = document.createElement("span"); title.textContent = name;
    const download = document.createElement("a");
    download.href = `/api/certs/${encodeURIComponent(name)}`; download.textContent = "download"; download.download = name;
    const remove = document.createElement("button");
    remove.textContent = "Delete"; remove.className = "cert-delete";
    remove.onclick = () => deleteCert(name);
    item.append(title, " ", download, " ", remove);
  }
}
async function deleteCert(name) {
  if (!confirm(`Delete ${name}? A source still using it fails at its next connect.`)) return;
  try { await api("DELETE", `/api/certs/${encodeURIComponent(name)}`); say($("#cert-message"), `deleted ${name}`, true); }
  catch (e) { say($("#cert-message"), e.message, false); }
  loadCerts();
}

// --- Monitoring ---------------------------------------------------------------------------------------------
async function poll() {
  if (!state.csrf) return;
  let status;
  try { status = await api("GET", "/api/status"); } catch (e) { return; }
  const now = Date.now() / 1000;
  const rates = {};
  if (state.last) {
    const dt = Math.max(0.001, now - state.last.t);
    const rate = (a, b) => Math.max(0, a - b) / dt; // a removed source lowers the total: not a negative rate
    state.history.push([now, rate(status.records_read, state.last.read), rate(status.records_written, state.last.written)]);
    while (state.history.length && state.history[0][0] < now - 120) state.history.shift();
    for (const [name, s] of Object.entries(status.sources)) {
      if (state.last.sources[name] !== undefined) rates[name] = rate(s.records_read, state.last.sources[name]);
    }
  }
  state.last = { t: now, read: status.records_read, written: status.records_written,
    sources: Object.fromEntries(Object.entries(status.sources).map(([n, s]) => [n, s.records_read])) };
  $("#stat-read").textContent = status.records_read; $("#stat-written").textContent = status.records_written;
  $("#stat-queue").textContent = status.queue_depth; $("#stat-failed").textContent = status.records_failed;
  $("#stat-dropped").textContent = status.records_dropped;
  $("#stat-failed").title = Object.entries(status.records_failed_by_type || {}).map(([k, v]) => `${k}: ${v}`).join("\n");
  const sink = status.sink;
  const sinkDown = sink && !sink.up && sink.last_error; // not up before the first write: not an error yet
  $("#stat-sink").textContent = sink ? `${sink.type} ${sink.up ? "up" : sinkDown ? "DOWN" : "waiting for the first write"}, breaker ${sink.breaker}` : "stopped";
  $("#stat-sink").title = (sink && sink.last_error) || "";
  $("#stat-sink").className = sinkDown ? "bad" : "";
  const enabled = Object.values(status.sources).filter((s) => s.enabled);
  const down = enabled.filter((s) => !s.connected).length;
  const header = $("#agent-state");
  header.textContent = !status.running ? "agent stopped" : down ? `agent running, ${down} of ${enabled.length} sources not connected` : "agent running";
  header.className = !status.running || sinkDown ? "bad" : down ? "warn" : "good";
  header.title = sinkDown ? `sink down: ${sink.last_error}` : "";
  $("#config-error").hidden = !status.config_error; $("#config-error").textContent = status.config_error || "";
  const body = $("#monitor-table tbody"); body.innerHTML = "";
  for (const [name, s] of Object.entries(status.sources)) {
    const row = body.insertRow();
    row.dataset.source = name;
    const cls = !s.enabled ? "off" : s.connected ? "up" : "down";
    const word = !s.enabled ? "disabled" : s.connected ? "connected" : s.last_error ? "failed" : "connecting";
    row.innerHTML = `<td class="nowrap"><span class="dot ${cls}"></span> <span class="state"></span></td><td class="nowrap"></td><td></td><td class="read num"></td><td class="rate num"></td><td class="rejected num"></td><td class="num"></td><td class="last-error"></td>`;
    row.querySelector(".state").textContent = word;
    row.cells[1].textContent = name; row.cells[2].textContent = s.type; row.cells[3].textContent = s.records_read;
    row.cells[4].textContent = rates[name] === undefined ? "-" : rates[name].toFixed(1);
    row.cells[5].textContent = s.rejected || 0;
    row.cells[6].textContent = s.reconnects || 0; row.cells[7].textContent = s.last_error || "";
    const listed = document.querySelector(`#source-table tr[data-source="${CSS.escape(name)}"]`);
    if (listed) {
      listed.querySelector(".dot").className = `dot ${cls}`;
      listed.querySelector(".state").textContent = word;
      listed.title = s.last_error || "";
    }
  }
  const options = $("#tag-source");
  const names = Object.keys(status.sources);
  if ([...options.options].map((o) => o.value).join("\n") !== names.join("\n")) {
    const chosen = options.value;
    options.innerHTML = "";
    for (const name of names) options.add(new Option(name, name));
    if (names.includes(chosen)) options.value = chosen;
  }
  if (!$("#tab-monitoring").hidden) pollTags();
  drawLines($("#throughput-chart"), state.history.map((p) => p[0]), [state.history.map((p) => p[1]), state.history.map((p) => p[2])], ["#3d7bd9", "#1f9d55"], ["read/s", "written/s"]);
  let previous = 0;
  drawBars($("#latency-chart"), status.latency_buckets.map(([le, cumulative]) => {
    const bar = { label: le === "+Inf" ? "more" : seconds(Number(le)), count: cumulative - previous };
    previous = cumulative; return bar;
  }));
}

function seconds(s) { return s < 1 ? `${Math.round(s * 1000)} ms` : `${s} s`; }

// --- Live tag values ------------------------------------------------------------------------------------------
function showTags(name) {
  showTab("monitoring");
  const options = $("#tag-source");
  if (![...options.options].some((o) => o.value === name)) options.add(new Option(name, name));
  options.value = name;
  pollTags();
  $("#tag-card").scrollIntoView();
}
async function pollTags() {
  const name = $("#tag-source").value;
  if (!name || state.tagBusy) return;
  state.tagBusy = true;
  let view;
  try { view = await api("GET", `/api/sources/${encodeURIComponent(name)}/tags`); }
  catch (e) { $("#tag-note").textContent = e.message; return; }
  finally { state.tagBusy = false; }
  if (name !== $("#tag-source").value) return;
  const body = $("#tag-table tbody"); body.innerHTML = "";
  for (const tag of view.tags) {
    const row = body.insertRow();
    row.dataset.tag = tag.tag_id;
    const utc = (us) => (us ? new Date(us / 1000).toISOString().replace("T", " ").replace("Z", "") : "-");
    const cells = [tag.tag_path || tag.tag_id, tag.value === null ? "" : String(tag.value), tag.unit || "", tag.quality,
      utc(tag.source_ts), utc(tag.edge_ts).slice(11), tag.updates_per_s.toFixed(1), tag.tag_id];
    cells.forEach((text, i) => { const cell = row.insertCell(); cell.textContent = text; cell.className = ["tag", "value", "unit", "quality", "ts nowrap", "received nowrap", "rate num", "tag-id"][i]; });
    row.cells[3].classList.add(`q-${tag.quality}`);
  }
  const more = view.total > view.tags.length ? `; ${view.tags.length} of ${view.total} tags shown` : "";
  const dropped = view.not_shown_updates ? `; ${view.not_shown_updates} updates of further tags not kept (limit reached)` : "";
  $("#tag-note").textContent = !view.running ? `${name} is not running` : view.tags.length ? `${view.total} tags${more}${dropped}` : `no values from ${name} yet`;
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
    await reload(); // before the message: an edit made after it must not be redrawn away
    say($("#settings-message"), answer.changed.length ? `applied: ${answer.changed.join(", ")}` : "nothing changed", true);
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
