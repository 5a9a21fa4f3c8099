// The API docs page (/api/docs): reads the OpenAPI description and shows it; descriptions
// are Markdown (backticks, bold, lists, links), rendered to DOM nodes, never through innerHTML.
"use strict";
(function () {
  const specUrl = document.body.dataset.specUrl;
  const METHODS = ["get", "post", "put", "patch", "delete", "head", "options"];

  // Build DOM nodes; text always goes through textContent, never innerHTML.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // Inline Markdown: `code`, **bold**, *em*, [text](link); anything else stays text.
  const INLINE = /`([^`]+)`|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*|\[([^\]]+)\]\(([^)\s]+)\)/g;
  function inline(text) {
    const out = [];
    let last = 0;
    for (const m of text.matchAll(INLINE)) {
      if (m.index > last) out.push(text.slice(last, m.index));
      if (m[1] !== undefined) out.push(el("code", {}, m[1]));
      else if (m[2] !== undefined) out.push(el("strong", {}, m[2]));
      else if (m[3] !== undefined) out.push(el("em", {}, m[3]));
      else if (/^(https?:\/\/|\/|#)/.test(m[5])) out.push(el("a", { href: m[5] }, m[4]));
      else out.push(m[4]);
      last = m.index + m[0].length;
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
  }

  // Block Markdown of a description: paragraphs (blank lines), "- " / "* " / "1. " lists,
  // and ``` fenced code; single line breaks inside a paragraph are spaces.
  function markdown(text, tag) {
    const box = el(tag || "div", { class: "md" });
    const lines = String(text || "").replace(/\r\n?/g, "\n").split("\n");
    let para = [];
    let list = null;
    const flush = () => {
      if (para.length) box.append(el("p", {}, inline(para.join(" "))));
      para = [];
    };
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      const item = /^\s*(?:[-*+]|\d+[.)])\s+(.*)$/.exec(line);
      if (line.trim().startsWith("```")) {
        flush(); list = null;
        const code = [];
        for (i++; i < lines.length && !lines[i].trim().startsWith("```"); i++) code.push(lines[i]);
        // focusable: a block wider than a phone scrolls by keyboard too
        box.append(el("pre", {tabindex: "0"}, el("code", {}, code.join("\n"))));
      } else if (item) {
        flush();
        if (!list) { list = el(/^\s*\d/.test(line) ? "ol" : "ul", {}); box.append(list); }
        list.append(el("li", {}, inline(item[1])));
      } else if (!line.trim()) {
        flush(); list = null;
      } else if (list && /^\s+/.test(line)) {
        list.lastChild.append(" ", ...inline(line.trim()));
      } else {
        list = null;
        para.push(line.trim());
      }
    }
    flush();
    return box;
  }

  function refName(ref) { return ref.split("/").pop(); }
  function anchor(kind, name) { return kind + "-" + name.replace(/[^A-Za-z0-9_-]/g, "_"); }

  // A readable type: links to component schemas, arrays as "array of X".
  function typeOf(schema) {
    if (!schema) return "any";
    if (schema.$ref) {
      const name = refName(schema.$ref);
      return el("a", { class: "ref mono", href: "#" + anchor("schema", name) }, name);
    }
    if (schema.allOf && schema.allOf.length === 1) return typeOf(schema.allOf[0]);
    if (schema.type === "array") return el("span", {}, "array of ", typeOf(schema.items));
    if (schema.type === "object" && schema.additionalProperties) {
      return el("span", {}, "object of ", typeOf(schema.additionalProperties));
    }
    let text = schema.type || (schema.properties ? "object" : "any");
    if (schema.format) text += " (" + schema.format + ")";
    return el("span", { class: "mono" }, text);
  }

  function flags(schema, required) {
    const out = [];
    if (required) out.push(el("span", { class: "req" }, "required "));
    for (const [key, label] of [["readOnly", "read-only"], ["writeOnly", "write-only"], ["nullable", "nullable"]]) {
      if (schema[key]) out.push(el("span", { class: "flag" }, label));
    }
    return out;
  }

  function constraints(schema) {
    const parts = [];
    if (schema.enum) parts.push("one of: " + schema.enum.map((v) => JSON.stringify(v)).join(", "));
    if (schema.minimum !== undefined) parts.push("min " + schema.minimum);
    if (schema.maximum !== undefined) parts.push("max " + schema.maximum);
    if (schema.minLength !== undefined) parts.push("min length " + schema.minLength);
    if (schema.maxLength !== undefined) parts.push("max length " + schema.maxLength);
    if (schema.minItems !== undefined) parts.push("min items " + schema.minItems);
    if (schema.maxItems !== undefined) parts.push("max items " + schema.maxItems);
    if (schema.pattern) parts.push("pattern " + schema.pattern);
    if (schema.default !== undefined) parts.push("default " + JSON.stringify(schema.default));
    if (schema.example !== undefined) parts.push("e.g. " + JSON.stringify(schema.example));
    return parts.join("; ");
  }

  function propertiesTable(schema) {
    const props = schema.properties || {};
    const required = new Set(schema.required || []);
    const names = Object.keys(props);
    if (!names.length) return el("p", { class: "summary" }, "No fields.");
    return el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Field"), el("th", {}, "Type"), el("th", {}, ""), el("th", {}, "Notes"))),
      el("tbody", {}, names.map((name) => {
        const prop = props[name];
        const limits = constraints(prop);
        return el("tr", {},
          el("td", { class: "mono" }, name),
          el("td", {}, typeOf(prop)),
          el("td", {}, flags(prop, required.has(name))),
          el("td", { class: "desc" }, prop.description ? markdown(prop.description) : null,
            limits ? el("div", { class: "limits" }, limits) : null));
      })));
  }

  function parametersTable(params) {
    return el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Parameter"), el("th", {}, "In"), el("th", {}, "Type"), el("th", {}, ""), el("th", {}, "Notes"))),
      el("tbody", {}, params.map((p) => el("tr", {},
        el("td", { class: "mono" }, p.name),
        el("td", {}, p.in),
        el("td", {}, typeOf(p.schema)),
        el("td", {}, flags({}, p.required)),
        el("td", { class: "desc" }, p.description ? markdown(p.description) : null,
          el("div", { class: "limits" }, constraints(p.schema || {})))))));
  }

  function contentList(content) {
    return Object.entries(content || {}).map(([type, media]) =>
      el("div", {}, el("span", { class: "mono" }, type), ": ", typeOf(media.schema)));
  }

  function resolve(spec, obj) {
    if (obj && obj.$ref && obj.$ref.startsWith("#/components/")) {
      const [, , section, name] = obj.$ref.split("/");
      return (spec.components[section] || {})[name] || obj;
    }
    return obj;
  }

  function schemaOf(spec, media) {
    const schema = media && media.schema;
    if (!schema) return null;
    if (schema.$ref) return resolve(spec, schema);
    if (schema.type === "array" && schema.items && schema.items.$ref) return null;
    return schema;
  }

  function operation(spec, path, method, op, pathParams) {
    const params = [...(pathParams || []), ...(op.parameters || [])].map((p) => resolve(spec, p));
    const secured = op.security ? op.security.some((s) => Object.keys(s).length) : (spec.security || []).length > 0;
    const optional = op.security && op.security.some((s) => !Object.keys(s).length);
    const body = el("div", { class: "body" });
    if (op.description) body.append(markdown(op.description));
    if (params.length) body.append(el("h3", {}, "Parameters"), parametersTable(params));
    if (op.requestBody) {
      const rb = resolve(spec, op.requestBody);
      body.append(el("h3", {}, "Request body" + (rb.required ? " (required)" : "")), ...contentList(rb.content));
      const media = Object.values(rb.content || {})[0];
      const inline = schemaOf(spec, media);
      if (inline && inline.properties) body.append(propertiesTable(inline));
    }
    body.append(el("h3", {}, "Responses"));
    body.append(el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Status"), el("th", {}, "Meaning"), el("th", {}, "Body"))),
      el("tbody", {}, Object.entries(op.responses || {}).map(([code, resp]) => {
        const r = resolve(spec, resp);
        return el("tr", {}, el("td", { class: "mono" }, code), el("td", {}, inline(r.description || "")), el("td", {}, contentList(r.content)));
      }))));
    const id = anchor("op", method + path);
    const details = el("details", { class: "op", id: id, "data-search": (method + " " + path + " " + (op.summary || "")).toLowerCase() },
      el("summary", {},
        el("span", { class: "method " + method }, method),
        el("span", { class: "path" }, path),
        el("span", { class: "summary" }, op.summary || ""),
        el("span", { class: "lock" }, secured ? (optional ? "token optional" : "token") : "public")),
      body);
    return details;
  }

  function render(spec) {
    document.title = spec.info.title + " " + spec.info.version;
    document.getElementById("title").textContent = spec.info.title + " (" + spec.info.version + ")";
    const meta = document.getElementById("meta");
    meta.textContent = "OpenAPI " + spec.openapi + " — raw description: ";
    meta.append(el("a", { href: specUrl }, specUrl));
    const schemes = (spec.components && spec.components.securitySchemes) || {};
    const auth = document.getElementById("auth");
    for (const [name, s] of Object.entries(schemes)) {
      auth.append(el("div", {}, el("strong", {}, name), ": ", s.description ? inline(s.description) : [s.type, s.scheme, s.in, s.name].filter(Boolean).join(" ")));
    }

    const tags = (spec.tags || []).map((t) => ({ ...t, ops: [] }));
    const byName = Object.fromEntries(tags.map((t) => [t.name, t]));
    for (const [path, item] of Object.entries(spec.paths || {})) {
      for (const method of METHODS) {
        if (!item[method]) continue;
        const op = item[method];
        const tagName = (op.tags && op.tags[0]) || "Other";
        if (!byName[tagName]) { byName[tagName] = { name: tagName, ops: [] }; tags.push(byName[tagName]); }
        byName[tagName].ops.push({ path, method, op, params: item.parameters });
      }
    }

    const content = document.getElementById("content");
    const toc = document.getElementById("toc");
    content.replaceChildren();
    toc.replaceChildren();
    toc.append(el("h2", {}, "Resources"));
    for (const tag of tags) {
      const id = anchor("tag", tag.name);
      toc.append(el("a", { href: "#" + id }, tag.name + " (" + tag.ops.length + ")"));
      const section = el("section", { class: "tag", id: id }, el("h2", {}, tag.name));
      if (tag.description) section.append(markdown(tag.description));
      for (const o of tag.ops) section.append(operation(spec, o.path, o.method, o.op, o.params));
      content.append(section);
    }
    const schemas = (spec.components && spec.components.schemas) || {};
    toc.append(el("h2", {}, "Schemas"));
    const schemaSection = el("section", { class: "tag", id: "schemas" }, el("h2", {}, "Schemas"));
    for (const name of Object.keys(schemas).sort()) {
      toc.append(el("a", { href: "#" + anchor("schema", name) }, name));
      const schema = schemas[name];
      schemaSection.append(el("div", { class: "schema", id: anchor("schema", name) },
        el("h3", {}, name), schema.description ? markdown(schema.description) : null,
        propertiesTable(schema)));
    }
    content.append(schemaSection);
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  }

  document.getElementById("filter").addEventListener("input", (event) => {
    const words = event.target.value.toLowerCase().trim();
    for (const op of document.querySelectorAll("details.op")) {
      op.hidden = Boolean(words) && !op.dataset.search.includes(words);
    }
    for (const section of document.querySelectorAll("section.tag")) {
      if (section.id === "schemas") { section.hidden = Boolean(words); continue; }
      section.hidden = !section.querySelector("details.op:not([hidden])");
    }
  });

  fetch(specUrl, { headers: { Accept: "application/json" } })
    .then((response) => {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    })
    .then(render)
    .catch((error) => {
      const meta = document.getElementById("meta");
      meta.className = "error";
      meta.textContent = "Could not load " + specUrl + ": " + error.message;
    });
})();
