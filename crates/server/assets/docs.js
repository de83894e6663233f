// The /docs page: renders /api/openapi.json (served as a file: the CSP allows no inline script).
const esc = s => String(s ?? "").replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"}[c]));
function ref(spec, r) { return r && r.$ref ? spec.components.schemas[r.$ref.split("/").pop()] : r; }
function schemaText(spec, s, depth = 0) {
  s = ref(spec, s) || {};
  if (depth > 3) return "…";
  if (s.type === "array" || (Array.isArray(s.type) && s.type.includes("array")))
    return "[" + schemaText(spec, s.items, depth + 1) + "]";
  if (s.properties) {
    const pad = "  ".repeat(depth + 1);
    return "{\n" + Object.entries(s.properties).map(([k, v]) => {
      const d = ref(spec, v) || {};
      const t = d.properties || d.items ? schemaText(spec, v, depth + 1) : (Array.isArray(d.type) ? d.type.join("|") : d.type || "any");
      return pad + k + ": " + t + (d.description ? "   // " + d.description.split("\n")[0] : "");
    }).join("\n") + "\n" + "  ".repeat(depth) + "}";
  }
  return Array.isArray(s.type) ? s.type.join("|") : (s.type || "any");
}
fetch("/api/openapi.json").then(r => r.json()).then(spec => {
  let h = `<p>${esc(spec.info.description)}</p><p class="muted">Version ${esc(spec.info.version)}</p>`;
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      h += `<details class="op"><summary><span class="m ${method}">${method}</span> <span class="path">${esc(path)}</span> <span class="muted">${esc(op.summary || "")}</span></summary><div class="body">`;
      if (op.description) h += `<p>${esc(op.description)}</p>`;
      if (op.requestBody) {
        h += `<h2>Request body</h2><p>${esc(op.requestBody.description || "")}</p>`;
        for (const [ct, c] of Object.entries(op.requestBody.content || {})) h += `<div class="muted">${esc(ct)}</div><pre>${esc(schemaText(spec, c.schema))}</pre>`;
      }
      h += `<h2>Responses</h2><table>`;
      for (const [code, r] of Object.entries(op.responses || {})) {
        const c = r.content ? Object.entries(r.content)[0] : null;
        h += `<tr><td><b>${esc(code)}</b></td><td>${esc(r.description)}${c ? `<pre>${esc(schemaText(spec, c[1].schema))}</pre>` : ""}</td></tr>`;
      }
      h += `</table></div></details>`;
    }
  }
  document.getElementById("out").innerHTML = h;
}).catch(e => { document.getElementById("out").textContent = "Could not load the API description: " + e; });
