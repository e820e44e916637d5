// Forms generated from the core's JSON Schemas (GET /api/schemas): every option of a config model is editable
// and a new option in the core appears here without GUI changes. Labels are the keys in words with the
// schema's description as help; lists of objects (MQTT topics, Modbus registers, OPC-UA nodes) and lists of
// strings are tables with add/remove rows; certificate files are picked from the uploaded ones. The server
// validates everything and answers with the key that is wrong. All text goes in through textContent/value.
"use strict";

const WORDS = { zerobus: "ZeroBus", url: "URL", qos: "QoS", id: "ID", tls: "TLS", opcua: "OPC-UA", mqtt: "MQTT", ms: "(ms)", s: "(s)", ca: "CA", uri: "URI" };
const CERT_FIELDS = new Set(["ca_file", "cert_file", "key_file"]);
const OTHER_PATH = "\u0000other"; // the file picker's "type a path" entry (no real path starts with NUL)
const forms = { certs: [], certsDir: "" }; // uploaded certificate files, set by app.js

// "poll_interval_s" -> "Poll interval (s)", "ca_file" -> "CA file"
function words(key) {
  const parts = key.split("_").map((p) => WORDS[p] || p);
  const text = parts.join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function resolveSchema(schema, defs) {
  if (schema && schema.$ref) return resolveSchema(defs[schema.$ref.split("/").pop()], defs);
  if (schema && schema.anyOf) {
    const real = schema.anyOf.filter((s) => s.type !== "null");
    if (real.length === 1) return Object.assign({}, resolveSchema(real[0], defs), { nullable: true, default: schema.default, description: schema.description });
  }
  return schema || {};
}

function fieldKind(schema, defs, key) {
  if (schema.const !== undefined) return "const";
  if (schema.enum) return "enum";
  if (schema.format === "password") return "secret";
  if (schema.type === "boolean") return "boolean";
  if (schema.type === "integer" || schema.type === "number") return "number";
  if (schema.type === "string") return CERT_FIELDS.has(key) ? "certfile" : "string";
  if (schema.type === "object" && schema.properties) return "object";
  if (schema.type === "array" && schema.items) {
    const item = resolveSchema(schema.items, defs);
    if (item.type === "object" && item.properties) return "table";
    if (item.type === "string") return "list";
  }
  return "json";
}

function helpText(text) {
  const small = document.createElement("small");
  small.className = "help"; small.textContent = text;
  return small;
}

// One input for a scalar of kind `kind`, filled with `current`.
function makeInput(prop, kind, current, mask) {
  let input;
  if (kind === "enum") {
    input = document.createElement("select");
    if (prop.nullable) input.add(new Option("(default)", ""));
    for (const option of prop.enum) input.add(new Option(String(option), JSON.stringify(option)));
    input.value = current !== undefined && current !== null ? JSON.stringify(current) : prop.nullable ? "" : input.value;
  } else if (kind === "certfile") {
    input = document.createElement("select");
    input.add(new Option("(none)", ""));
    for (const name of forms.certs) input.add(new Option(name, `${forms.certsDir}/${name}`));
    if (current && ![...input.options].some((o) => o.value === current)) input.add(new Option(current, current));
    input.add(new Option("other path (type it)...", OTHER_PATH));
    input.value = current || "";
    input.onchange = () => { // e.g. where the agent is to generate an OPC-UA client certificate
      if (input.value !== OTHER_PATH) return;
      const text = document.createElement("input");
      text.type = "text"; text.placeholder = "/path/to/file.pem";
      Object.assign(text.dataset, input.dataset);
      text.name = input.name; text.title = input.title;
      input.replaceWith(text);
      text.focus();
    };
  } else if (kind === "boolean") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = Boolean(current);
  } else if (kind === "json") {
    input = document.createElement("textarea");
    input.value = current === undefined || current === null ? "" : JSON.stringify(current, null, 1);
  } else {
    input = document.createElement("input");
    input.type = kind === "secret" ? "password" : kind === "number" ? "number" : "text";
    if (kind === "number") input.step = "any";
    if (kind === "secret" && current === mask) { input.placeholder = "stored (leave empty to keep; type it again for a new address)"; }
    else if (current !== undefined && current !== null) input.value = current;
    if (kind === "const") { input.value = prop.const; input.readOnly = true; }
  }
  input.dataset.kind = kind;
  input.dataset.nullable = prop.nullable ? "1" : "";
  input.dataset.stored = kind === "secret" && current === mask ? "1" : "";
  return input;
}

// The value of one scalar input; undefined = leave the key out (empty, or an optional field left alone).
function inputValue(input, mask, where) {
  const { kind, nullable, stored } = input.dataset;
  if (kind === "boolean") return input.checked;
  if (kind === "enum") return input.value === "" ? undefined : JSON.parse(input.value);
  if (kind === "json") {
    if (input.value.trim() === "") return nullable ? undefined : [];
    try { return JSON.parse(input.value); } catch (e) { throw new Error(`${where}: not valid JSON (${e.message})`); }
  }
  if (kind === "secret") return input.value === "" ? (stored ? mask : undefined) : input.value;
  if (input.value === "") return undefined;
  return kind === "number" ? Number(input.value) : input.value;
}

// A table editor for a list: one column per scalar property of the items (or one "value" column for a list of
// strings), a Remove button per row and an "Add row" button. Values the columns do not show are kept per row.
function renderTable(container, key, id, prop, defs, rows, mask, required) {
  const item = resolveSchema(prop.items, defs);
  const scalarItems = item.type !== "object";
  const props = scalarItems ? [["value", item]] : Object.entries(item.properties).map(([k, raw]) => [k, resolveSchema(raw, defs)]);
  const need = new Set(item.required || []);
  const columns = props.filter(([k, p]) => !["object", "table", "list", "json"].includes(fieldKind(p, defs, k)))
    .sort(([a], [b]) => Number(need.has(b)) - Number(need.has(a)));
  const wrap = document.createElement("div");
  wrap.className = "list-editor"; wrap.dataset.path = id; wrap.dataset.kind = scalarItems ? "list" : "table";
  const title = document.createElement("div");
  title.className = "list-title"; title.textContent = `${words(key)}${required ? " *" : ""}`;
  wrap.appendChild(title);
  if (prop.description) wrap.appendChild(helpText(prop.description));
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const [k, p] of columns) {
    const th = document.createElement("th");
    th.textContent = scalarItems ? "Value" : `${words(k)}${need.has(k) ? " *" : ""}`;
    th.title = p.description || "";
    head.appendChild(th);
  }
  head.appendChild(document.createElement("th"));
  const body = table.createTBody();
  const addRow = (row) => {
    const values = scalarItems ? { value: row } : (typeof row === "string" ? { id: row } : row || {});
    const tr = body.insertRow();
    tr._extra = Object.fromEntries(Object.entries(values).filter(([k]) => !columns.some(([c]) => c === k)));
    for (const [k, p] of columns) {
      const input = makeInput(p, fieldKind(p, defs, k), values[k] !== undefined ? values[k] : p.default, mask);
      input.dataset.col = k;
      if (key === "trusted_server_certs") input.setAttribute("list", "cert-paths"); // uploaded files, or any path
      input.title = p.description || "";
      input.setAttribute("aria-label", words(k));
      tr.insertCell().appendChild(input);
    }
    const remove = document.createElement("button");
    remove.type = "button"; remove.className = "remove-row"; remove.textContent = "Remove";
    remove.onclick = () => tr.remove();
    tr.insertCell().appendChild(remove);
    return tr;
  };
  for (const row of Array.isArray(rows) ? rows : []) addRow(row);
  wrap.appendChild(table);
  const add = document.createElement("button");
  add.type = "button"; add.className = "add-row"; add.textContent = "Add row";
  add.onclick = () => { const tr = addRow(scalarItems ? "" : {}); const first = tr.querySelector("input, select"); if (first) first.focus(); };
  wrap.appendChild(add);
  wrap._addRow = addRow;
  container.appendChild(wrap);
  return wrap;
}

function readTable(wrap, mask) {
  const out = [];
  const scalarItems = wrap.dataset.kind === "list";
  wrap.querySelectorAll("tbody tr").forEach((tr, i) => {
    const row = Object.assign({}, tr._extra || {});
    for (const input of tr.querySelectorAll("[data-col]")) {
      const value = inputValue(input, mask, `${wrap.dataset.path}[${i}].${input.dataset.col}`);
      if (value !== undefined && !(input.dataset.kind === "boolean" && value === false && input.dataset.nullable)) row[input.dataset.col] = value;
    }
    if (scalarItems) { if (row.value !== undefined) out.push(row.value); }
    else if (Object.keys(row).length) out.push(row);
  });
  return out;
}

// Renders `schema` (an object schema) into `container`, filled from `value`. `basic` (a Set of top-level keys)
// puts every other key into a closed "Advanced" section.
function renderForm(container, schema, defs, value, mask, path = "", basic = null) {
  schema = resolveSchema(schema, defs);
  const required = new Set(schema.required || []);
  let advanced = null;
  const target = (key) => {
    if (!basic || basic.has(key)) return container;
    if (!advanced) {
      advanced = document.createElement("details");
      advanced.className = "advanced";
      const summary = document.createElement("summary");
      summary.textContent = "Advanced";
      advanced.appendChild(summary);
    }
    return advanced;
  };
  for (const [key, raw] of Object.entries(schema.properties || {})) {
    const prop = resolveSchema(raw, defs);
    const kind = fieldKind(prop, defs, key);
    const id = path ? `${path}.${key}` : key;
    const current = value && value[key] !== undefined ? value[key] : prop.default;
    const where = target(key);
    if (kind === "object") {
      const fs = document.createElement("fieldset");
      const legend = document.createElement("legend");
      legend.textContent = words(key);
      fs.appendChild(legend);
      if (prop.description) fs.appendChild(helpText(prop.description));
      if (prop.nullable) { // optional section (e.g. OPC-UA browse): sent only when switched on
        const toggle = document.createElement("input");
        toggle.type = "checkbox"; toggle.className = "section-toggle"; toggle.dataset.section = id;
        toggle.checked = current !== undefined && current !== null;
        fs.dataset.off = toggle.checked ? "" : "1";
        toggle.onchange = () => { fs.dataset.off = toggle.checked ? "" : "1"; };
        legend.prepend(toggle);
      }
      renderForm(fs, prop, defs, current || {}, mask, id);
      where.appendChild(fs);
      continue;
    }
    if (kind === "table" || kind === "list") {
      renderTable(where, key, id, prop, defs, current, mask, required.has(key));
      continue;
    }
    const label = document.createElement("label");
    const input = makeInput(prop, kind, current, mask);
    input.dataset.path = id;
    input.name = id;
    const caption = document.createElement("span");
    caption.textContent = `${words(key)}${required.has(key) ? " *" : ""}`;
    label.append(caption, input);
    if (kind === "boolean") { label.className = "check"; label.prepend(input); }
    if (prop.description && kind !== "const") label.appendChild(helpText(prop.description));
    if (kind === "const") label.hidden = true;
    where.appendChild(label);
  }
  if (advanced) container.appendChild(advanced);
}

function setPath(target, path, value) {
  const keys = path.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) node = node[key] = node[key] || {};
  node[keys[keys.length - 1]] = value;
}

// Reads the form back; throws Error naming the field when a JSON value does not parse.
function readForm(container, mask) {
  const out = {};
  for (const input of container.querySelectorAll("[data-path]")) {
    if (input.closest('fieldset[data-off="1"]')) continue;
    const { path, kind } = input.dataset;
    const value = kind === "table" || kind === "list" ? readTable(input, mask) : inputValue(input, mask, path);
    if (value !== undefined) setPath(out, path, value);
  }
  return out;
}
