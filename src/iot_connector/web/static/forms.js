// Forms generated from the agent's JSON Schemas (pydantic), so every option the core supports is editable
// and a new option in the core appears here without GUI changes. Lists of objects (topics, registers,
// nodes) are edited as JSON; the server validates everything and answers with the key that is wrong.
"use strict";

function resolveSchema(schema, defs) {
  if (schema && schema.$ref) return resolveSchema(defs[schema.$ref.split("/").pop()], defs);
  if (schema && schema.anyOf) {
    const real = schema.anyOf.filter((s) => s.type !== "null");
    if (real.length === 1) return Object.assign({}, resolveSchema(real[0], defs), { nullable: true, default: schema.default, description: schema.description });
  }
  return schema || {};
}

function fieldKind(schema) {
  if (schema.const !== undefined) return "const";
  if (schema.enum) return "enum";
  if (schema.format === "password") return "secret";
  if (schema.type === "boolean") return "boolean";
  if (schema.type === "integer" || schema.type === "number") return "number";
  if (schema.type === "string") return "string";
  if (schema.type === "object" && schema.properties) return "object";
  return "json";
}

// Renders `schema` (an object schema) into `container`, filled from `value`.
function renderForm(container, schema, defs, value, mask, path = "") {
  schema = resolveSchema(schema, defs);
  const required = new Set(schema.required || []);
  for (const [key, raw] of Object.entries(schema.properties || {})) {
    const prop = resolveSchema(raw, defs);
    const kind = fieldKind(prop);
    const id = path ? `${path}.${key}` : key;
    const current = value && value[key] !== undefined ? value[key] : prop.default;
    if (kind === "object") {
      const fs = document.createElement("fieldset");
      const legend = document.createElement("legend"); // "certificate_auto_rotation" -> "Certificate auto rotation"
      legend.textContent = key.charAt(0).toUpperCase() + key.slice(1).replace(/_/g, " ");
      fs.appendChild(legend);
      if (prop.nullable) { // optional section (e.g. OPC-UA browse): sent only when switched on
        const toggle = document.createElement("input");
        toggle.type = "checkbox"; toggle.className = "section-toggle"; toggle.dataset.section = id;
        toggle.checked = current !== undefined && current !== null;
        fs.dataset.off = toggle.checked ? "" : "1";
        toggle.onchange = () => { fs.dataset.off = toggle.checked ? "" : "1"; };
        fs.firstChild.prepend(toggle);
      }
      renderForm(fs, prop, defs, current || {}, mask, id);
      container.appendChild(fs);
      continue;
    }
    const label = document.createElement("label");
    label.title = prop.description || "";
    let input;
    if (kind === "enum") {
      input = document.createElement("select");
      for (const option of prop.enum) input.add(new Option(String(option), JSON.stringify(option)));
      if (current !== undefined && current !== null) input.value = JSON.stringify(current);
    } else if (kind === "boolean") {
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = Boolean(current);
      label.className = "check";
    } else if (kind === "json") {
      input = document.createElement("textarea");
      input.value = current === undefined || current === null ? "" : JSON.stringify(current, null, 1);
    } else {
      input = document.createElement("input");
      input.type = kind === "secret" ? "password" : kind === "number" ? "number" : "text";
      if (kind === "number") input.step = "any";
      if (kind === "secret" && current === mask) { input.placeholder = "stored (leave empty to keep; type it again for a new address)"; }
      else if (current !== undefined && current !== null) input.value = current;
      if (kind === "const") { input.value = prop.const; input.readOnly = true; label.hidden = true; }
    }
    input.dataset.path = id;
    input.dataset.kind = kind;
    input.dataset.nullable = prop.nullable ? "1" : "";
    input.dataset.stored = kind === "secret" && current === mask ? "1" : "";
    input.name = id;
    label.append(`${key}${required.has(key) ? " *" : ""}`, input);
    if (kind === "boolean") label.prepend(input);
    container.appendChild(label);
  }
}

function setPath(target, path, value) {
  const keys = path.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) node = node[key] = node[key] || {};
  node[keys[keys.length - 1]] = value;
}

// Reads the form back; throws Error naming the field when a JSON list does not parse.
function readForm(container, mask) {
  const out = {};
  for (const input of container.querySelectorAll("[data-path]")) {
    if (input.closest('fieldset[data-off="1"]')) continue;
    const { path, kind, nullable, stored } = input.dataset;
    let value;
    if (kind === "boolean") value = input.checked;
    else if (kind === "enum") value = JSON.parse(input.value);
    else if (kind === "json") {
      if (input.value.trim() === "") { if (nullable) continue; value = []; }
      else {
        try { value = JSON.parse(input.value); } catch (e) { throw new Error(`${path}: not valid JSON (${e.message})`); }
      }
    } else if (kind === "secret") {
      if (input.value === "") { if (stored) value = mask; else continue; } else value = input.value;
    } else if (input.value === "") { continue; }
    else value = kind === "number" ? Number(input.value) : input.value;
    setPath(out, path, value);
  }
  return out;
}
