/* FlagKit dashboard. Vanilla JavaScript, shipped with the server; no build step.
 *
 * Safety rule of this file: every text that comes from the server (flag keys, values,
 * rule descriptions, event data) is put into the page with textContent or as an
 * attribute value, never parsed as HTML. The server's Content-Security-Policy allows only
 * this script, so an injected <script> or onerror= could not run anyway.
 */
"use strict";

const state = { session: null, timer: null, feed: null };
const SVG = "http://www.w3.org/2000/svg";

/* ---- DOM helpers ------------------------------------------------------------------- */

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") el.textContent = String(value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "className") el.className = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/* A sentence whose `backticked` parts become <code> (as text). */
function words(sentence) {
  const span = h("span");
  String(sentence).split("`").forEach((part, i) => {
    span.append(i % 2 ? h("code", { text: part }) : document.createTextNode(part));
  });
  return span;
}

function show(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function when(seconds) {
  if (!seconds) return "";
  return new Date(seconds * 1000).toLocaleString();
}

function say(message, isError) {
  const status = document.getElementById("status");
  status.textContent = message || "";
  status.className = isError ? "status error" : "status";
}

function page(title, ...content) {
  const main = document.getElementById("main");
  main.replaceChildren(h("h1", { id: "page-title", text: title }), ...content.flat().filter((c) => c));
  main.focus({ preventScroll: true });
}

/* ---- API --------------------------------------------------------------------------- */

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.session && state.session.csrf) {
    headers["X-CSRF-Token"] = state.session.csrf;
  }
  const response = await fetch("/dashboard/api/" + path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch (e) {
    data = null;
  }
  if (response.status === 401 && path !== "session") {
    state.session = { signedIn: false, readonlyOpen: false };
    renderSignIn("Your session ended: sign in again.");
  }
  return { status: response.status, ok: response.ok, data: data || {} };
}

const flagPath = (key) => "flags/" + encodeURIComponent(key);

/* ---- sign-in ------------------------------------------------------------------------ */

function renderSignIn(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  const error = h("p", { id: "sign-in-error", className: "error", role: "alert", text: message || "" });
  const input = h("input", {
    id: "token", name: "token", type: "password", autocomplete: "current-password",
    required: true, "aria-describedby": "token-help sign-in-error",
  });
  const form = h("form", { id: "sign-in-form", className: "panel", onsubmit: async (event) => {
      event.preventDefault();
      const result = await api("POST", "session", { token: input.value });
      input.value = "";
      if (!result.ok) {
        error.textContent = result.data.message || "Sign-in failed.";
        input.focus();
        return;
      }
      state.session = result.data;
      start();
    } },
    h("label", { for: "token", text: "Admin token" }),
    input,
    h("p", { id: "token-help", className: "muted",
      text: "The admin token is printed by 'flagkit serve' (and by 'make demo')." }),
    h("button", { type: "submit", id: "sign-in", className: "primary", text: "Sign in" }),
    error);
  page("Sign in", form);
  input.focus();
}

async function signOut() {
  await api("DELETE", "session");
  state.session = { signedIn: false };
  location.hash = "";
  renderSignIn("Signed out.");
}

/* ---- routing ----------------------------------------------------------------------- */

const canChange = () => Boolean(state.session && state.session.signedIn);

function route() {
  clearInterval(state.timer);
  state.timer = null;
  if (state.feed) {
    state.feed.close();
    state.feed = null;
  }
  say("");
  const hash = location.hash || "#/flags";
  const [, name, ...rest] = hash.split("/");
  for (const link of document.querySelectorAll("nav a")) {
    const section = name === "flag" ? "flags" : name || "flags";
    if (link.getAttribute("href") === "#/" + section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const arg = decodeURIComponent(rest.join("/"));
  const pages = { flags: flagsPage, flag: flagPage, explain: explainPage, events: eventsPage,
    experiments: experimentsPage, usage: usagePage };
  (pages[name] || flagsPage)(arg);
}

async function start() {
  if (!state.session) state.session = (await api("GET", "session")).data;
  const s = state.session;
  if (!s.signedIn && !s.readonlyOpen) {
    renderSignIn("");
    return;
  }
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = !s.signedIn;
  route();
}

/* ---- flags list -------------------------------------------------------------------- */

async function change(key, fields) {
  const result = await api("PATCH", flagPath(key), fields);
  if (!result.ok) {
    say(`${key}: ${result.data.field ? result.data.field + ": " : ""}${result.data.message || "not saved"}`, true);
    return null;
  }
  const where = result.data.written ? "written to the flags file" : result.data.notWritten;
  say(`${key} saved (version ${result.data.flag.version}; ${where}).`);
  return result.data;
}

function toggleButton(flag, after) {
  const button = h("button", {
    type: "button", className: "toggle", id: "toggle-" + flag.key,
    "aria-pressed": flag.enabled ? "true" : "false",
    "aria-label": `${flag.key} enabled`, text: flag.enabled ? "On" : "Off",
    disabled: !canChange(),
    onclick: async () => {
      button.disabled = true;
      const done = await change(flag.key, { enabled: !flag.enabled });
      button.disabled = false;
      if (done) after(done.flag);
    },
  });
  return button;
}

function valueEditor(flag, after) {
  const shown = h("span", { className: "value mono", text: show(flag.value) });
  if (!flag.simple || !canChange() || flag.flagType === "json") return shown;
  if (flag.flagType === "boolean") {
    return h("span", {}, shown, " ", h("button", {
      type: "button", className: "link", id: "flip-" + flag.key,
      "aria-label": `Serve ${!flag.value} for ${flag.key}`, text: `serve ${!flag.value}`,
      onclick: async () => { const d = await change(flag.key, { value: !flag.value }); if (d) after(d.flag); },
    }));
  }
  const input = h("input", { type: "text", id: "value-" + flag.key, value: show(flag.value),
    "aria-label": `Value of ${flag.key}` });
  return h("form", { className: "inline-form", onsubmit: async (event) => {
      event.preventDefault();
      let value = input.value;
      if (flag.flagType === "number") {
        value = Number(value);
        if (input.value.trim() === "" || !Number.isFinite(value)) {
          say(`${flag.key}: value: must be a number`, true);
          return;
        }
      }
      const done = await change(flag.key, { value });
      if (done) after(done.flag);
    } }, input, h("button", { type: "submit", text: "Save" }));
}

function rolloutSlider(flag, after) {
  const rollout = flag.rollout;
  if (!rollout || !Array.isArray(rollout.variations) || rollout.variations.length !== 2) return null;
  const [first, second] = rollout.variations;
  const total = (first.weight || 0) + (second.weight || 0) || 100000;
  const percent = Math.round(((first.weight || 0) * 100) / total);
  const output = h("output", { id: "rollout-out-" + flag.key, text: `${percent}% ${first.variation}` });
  const slider = h("input", {
    type: "range", min: "0", max: "100", step: "1", value: String(percent),
    id: "rollout-" + flag.key, disabled: !canChange(),
    "aria-label": `Share of users served ${first.variation} for ${flag.key}, in percent`,
    oninput: () => { output.textContent = `${slider.value}% ${first.variation}`; },
    onchange: async () => {
      const share = Number(slider.value) * 1000;
      const fallthrough = { rollout: { ...rollout, variations: [
        { ...first, weight: share }, { ...second, weight: 100000 - share }] } };
      const done = await change(flag.key, { fallthrough });
      if (done) after(done.flag);
    },
  });
  return h("div", { className: "slider" }, slider, output);
}

function flagRow(flag) {
  const row = h("tr", { id: "flag-" + flag.key, "data-key": flag.key });
  const fill = (current) => {
    const cell = (label, ...content) => h("td", { "data-label": label }, ...content);
    const active = document.activeElement;
    const focused = active && row.contains(active) ? active.id : null;
    row.replaceChildren(
      cell("Key", h("a", { href: "#/flag/" + encodeURIComponent(current.key), className: "mono", text: current.key })),
      cell("Type", current.flagType),
      cell("On", toggleButton(current, fill)),
      cell("Served value", valueEditor(current, fill)),
      cell("Targeting", words(current.summary), rolloutSlider(current, fill)),
      cell("Version", String(current.version)),
      cell("Last changed", current.lastModified || ""),
    );
    // Keep the keyboard where it was: the row was rebuilt with the same ids.
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
  };
  fill(flag);
  return row;
}

async function flagsPage() {
  const search = h("input", { type: "search", id: "flag-search", placeholder: "key, type or summary",
    "aria-controls": "flags-table" });
  const body = h("tbody");
  const table = h("table", { id: "flags-table", className: "cards" },
    h("caption", { className: "muted", text: "Every flag the server serves" }),
    h("thead", {}, h("tr", {}, ...["Key", "Type", "On", "Served value", "Targeting", "Version", "Last changed"]
      .map((t) => h("th", { scope: "col", text: t })))),
    body);
  const notice = state.session.notWritten
    ? h("p", { className: "notice", text: "Note: " + state.session.notWritten })
    : h("p", { className: "muted", text: `Changes are written to ${state.session.flagsFile} and streamed to connected SDKs.` });
  const readonly = canChange() ? null
    : h("p", { className: "notice", text: "Read-only view: sign in with the admin token to change flags." });
  page("Flags", readonly, notice, h("label", { for: "flag-search", text: "Search flags" }), search, table);
  let flags = [];
  const filter = () => {
    const q = search.value.trim().toLowerCase();
    body.replaceChildren(...flags
      .filter((f) => !q || [f.key, f.flagType, f.summary, show(f.value)].join(" ").toLowerCase().includes(q))
      .map(flagRow));
  };
  search.addEventListener("input", filter);
  const load = async () => {
    const active = document.activeElement;
    if (active && body.contains(active) && active.tagName === "INPUT") return; // being edited
    const result = await api("GET", "flags");
    if (!result.ok) return;
    const focusedId = active && active.id;
    flags = result.data.flags;
    filter();
    if (focusedId && document.getElementById(focusedId)) document.getElementById(focusedId).focus();
  };
  await load();
  state.timer = setInterval(load, 3000);
}

/* ---- one flag ---------------------------------------------------------------------- */

function diffBlock(lines) {
  const pre = h("pre", { className: "diff" });
  for (const line of lines) {
    const cls = line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "";
    pre.append(h("span", { className: cls, text: line }), cls ? "" : "\n");
  }
  return pre;
}

async function flagPage(key) {
  const result = await api("GET", flagPath(key));
  if (!result.ok) {
    page("Flag not found", h("p", { text: result.data.message || "No such flag." }));
    return;
  }
  const data = result.data;
  const flag = data.flag;
  const editor = h("textarea", { id: "flag-json", rows: "18", spellcheck: "false",
    "aria-describedby": "json-help json-error", readonly: !canChange() });
  editor.value = data.text;
  const error = h("p", { id: "json-error", className: "error", role: "alert" });
  const save = async (event) => {
    event.preventDefault();
    error.textContent = "";
    editor.removeAttribute("aria-invalid");
    let parsed;
    try {
      parsed = JSON.parse(editor.value);
    } catch (e) {
      editor.setAttribute("aria-invalid", "true");
      error.textContent = "JSON syntax: " + e.message + " (nothing saved)";
      return;
    }
    const saved = await api("PUT", flagPath(key), parsed);
    if (!saved.ok) {
      editor.setAttribute("aria-invalid", "true");
      error.textContent = `${saved.data.field || "flag"}: ${saved.data.message || "invalid"} (nothing saved)`;
      editor.focus();
      return;
    }
    say(`${key} saved as version ${saved.data.flag.version}.`);
    flagPage(key);
  };
  const form = h("form", { id: "json-form", onsubmit: save },
    h("label", { for: "flag-json", text: "Flag JSON" }),
    h("p", { id: "json-help", className: "muted",
      text: "Validated like the flags file; nothing is saved while it is invalid. version and lastModified are managed by the server." }),
    editor, error,
    canChange() ? h("button", { type: "submit", id: "save-json", className: "primary", text: "Save" }) : null);
  const history = h("ol", { className: "history", id: "history", reversed: true });
  for (const entry of data.history) {
    const current = entry.version === flag.version && !entry.deleted;
    history.append(h("li", { id: "version-" + entry.version },
      h("strong", { text: `Version ${entry.version}` }), " ",
      h("span", { className: "muted", text: when(entry.time) + (entry.deleted ? " (deleted)" : "") + (current ? " (current)" : "") }),
      " ",
      !current && !entry.deleted && canChange()
        ? h("button", { type: "button", id: "revert-" + entry.version, text: `Revert to version ${entry.version}`,
          onclick: async () => {
            const done = await api("POST", flagPath(key) + "/revert", { version: entry.version });
            if (done.ok) { say(`${key} reverted: now version ${done.data.flag.version}.`); flagPage(key); }
            else say(`${done.data.field ? done.data.field + ": " : ""}${done.data.message}`, true);
          } })
        : null,
      entry.diff.length ? diffBlock(entry.diff) : null));
  }
  page(key,
    h("p", {}, toggleButton(flag, () => flagPage(key)), " ", h("span", { className: "muted", text: `${flag.flagType}, version ${flag.version}` })),
    h("h2", { text: "What it serves" }),
    h("ul", { className: "words", id: "flag-words" }, ...data.description.map((line) => h("li", {}, words(line)))),
    data.segments.length ? h("h2", { text: "Segments it uses" }) : null,
    ...data.segments.map((s) => h("div", { className: "panel" }, h("code", { text: s.key }),
      h("ul", { className: "words" }, ...s.description.map((line) => h("li", {}, words(line)))))),
    h("p", {}, h("a", { href: "#/explain/" + encodeURIComponent(key), text: "Explain this flag for a user →" })),
    h("h2", { text: "Edit" }), form,
    h("h2", { text: "Version history" }), history);
}

/* ---- explain ----------------------------------------------------------------------- */

async function explainPage(key) {
  const [flags, users] = await Promise.all([api("GET", "flags"), api("GET", "users")]);
  const select = h("select", { id: "explain-flag" },
    ...(flags.data.flags || []).map((f) => h("option", { value: f.key, text: f.key, selected: f.key === key })));
  const context = h("textarea", { id: "explain-context", rows: "5", spellcheck: "false", "aria-describedby": "explain-help" });
  context.value = '{"userId": "user-1"}';
  const seen = h("select", { id: "explain-user" }, h("option", { value: "", text: "(type a context instead)" }),
    ...(users.data.users || []).map((u, i) => h("option", { value: String(i), text: u.userId })));
  seen.addEventListener("change", () => {
    const user = (users.data.users || [])[Number(seen.value)];
    if (seen.value !== "" && user) context.value = JSON.stringify(user.context, null, 2);
  });
  const out = h("div", { id: "explain-result", "aria-live": "polite" });
  const form = h("form", { id: "explain-form", className: "panel", onsubmit: async (event) => {
      event.preventDefault();
      let ctx;
      try {
        ctx = JSON.parse(context.value || "{}");
      } catch (e) {
        out.replaceChildren(h("p", { className: "error", role: "alert", text: "Context JSON: " + e.message }));
        return;
      }
      const result = await api("POST", "explain", { flag: select.value, context: ctx });
      if (!result.ok) {
        out.replaceChildren(h("p", { className: "error", role: "alert", text: result.data.message || "cannot explain" }));
        return;
      }
      const d = result.data;
      out.replaceChildren(
        h("h2", { text: "Answer" }),
        h("dl", {},
          h("dt", { text: "Value" }), h("dd", { id: "explain-value", className: "mono", text: show(d.value) }),
          h("dt", { text: "Reason" }), h("dd", { id: "explain-reason", text: d.reason }),
          d.variationId ? [h("dt", { text: "Variation" }), h("dd", { id: "explain-variation", className: "mono", text: d.variationId })] : null,
          d.error ? [h("dt", { text: "Error" }), h("dd", { text: d.error })] : null),
        h("h2", { text: "How it was decided" }),
        h("ol", { id: "explain-path", className: "words" }, ...d.path.map((line) => h("li", {}, words(line)))),
        h("h2", { text: "1,000 users with this context's other attributes" }),
        h("table", { id: "distribution" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Variation / value" }), h("th", { scope: "col", text: "Users" }), h("th", { scope: "col", text: "Share" }))),
          h("tbody", {}, ...d.distribution.map((e) => h("tr", { "data-variation": e.variation || "" },
            h("td", { className: "mono", text: e.variation || show(e.value) }),
            h("td", { text: String(e.users) }),
            h("td", { className: "share", text: `${(e.share * 100).toFixed(1)}%` }))))));
    } },
    h("label", { for: "explain-flag", text: "Flag" }), select,
    h("label", { for: "explain-user", text: "A user recently seen in events" }), seen,
    h("label", { for: "explain-context", text: "Context (JSON)" }), context,
    h("p", { id: "explain-help", className: "muted", text: 'Wire form, e.g. {"userId": "u-1", "country": "NL", "custom": {"plan": "pro"}}. The same evaluator as the SDK answers.' }),
    h("button", { type: "submit", id: "explain-submit", className: "primary", text: "Explain" }));
  page("Explain", form, out);
}

/* ---- events ------------------------------------------------------------------------ */

function eventsPage() {
  const type = h("input", { type: "text", id: "filter-type", placeholder: "e.g. purchase" });
  const user = h("input", { type: "text", id: "filter-user", placeholder: "e.g. user-1" });
  const list = h("ul", { id: "event-feed", className: "feed", "aria-live": "polite", "aria-relevant": "additions" });
  const counter = h("p", { className: "muted", id: "event-count" });
  const rows = [];
  const visible = (row) =>
    (!type.value || String(row.type || "").includes(type.value)) &&
    (!user.value || String(row.user || "").includes(user.value));
  const item = (row) => h("li", { "data-type": row.type || "", "data-user": row.user || "" },
    h("strong", { className: "type", text: row.type || "(no type)" }), " ",
    row.user ? h("span", {}, "user ", h("code", { className: "user", text: row.user })) : null, " ",
    h("span", { className: "muted", text: row.event.timestamp || "" }),
    h("code", { className: "data", text: JSON.stringify(row.event.eventData || row.event.data || {}) }));
  const render = () => {
    const shown = rows.filter(visible).slice(-200).reverse();
    list.replaceChildren(...shown.map(item));
    counter.textContent = `${shown.length} of ${rows.length} events shown (newest first, live).`;
  };
  type.addEventListener("input", render);
  user.addEventListener("input", render);
  page("Events",
    h("div", { className: "filters" },
      h("div", {}, h("label", { for: "filter-type", text: "Event type" }), type),
      h("div", {}, h("label", { for: "filter-user", text: "User" }), user)),
    counter, list);
  api("GET", "events").then((result) => {
    let last = 0;
    for (const row of result.data.events || []) { rows.push(row); last = row.seq; }
    render();
    const feed = new EventSource("/dashboard/api/events/stream?after=" + last);
    feed.addEventListener("event", (message) => {
      rows.push(JSON.parse(message.data));
      if (rows.length > 2000) rows.splice(0, rows.length - 2000);
      render();
    });
    feed.addEventListener("open", () => list.setAttribute("data-live", "true"));
    state.feed = feed;
  });
}

/* ---- experiments ------------------------------------------------------------------- */

function svgEl(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function rateChart(exp) {
  const vars = exp.variations || [];
  const rowH = 28, left = 110, width = 480, height = vars.length * rowH + 30;
  const max = Math.max(0.0001, ...vars.map((v) => (v.ci ? v.ci[1] : v.rate) || 0)) * 1.1;
  const x = (value) => left + (Math.max(0, value) / max) * (width - left - 80);
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img",
    "aria-label": `Conversion rate of each variation of ${exp.flag} with its interval` });
  svg.append(svgEl("title", {}, `Conversion rates of ${exp.flag}`));
  vars.forEach((v, i) => {
    const y = 15 + i * rowH;
    svg.append(svgEl("text", { x: 4, y: y + 4 }, String(v.id)));
    if (v.ci) svg.append(svgEl("line", { x1: x(v.ci[0]), x2: x(v.ci[1]), y1: y, y2: y, stroke: "#0b5cad", "stroke-width": 3 }));
    svg.append(svgEl("circle", { cx: x(v.rate || 0), cy: y, r: 5, fill: v.id === exp.control ? "#57606a" : "#1a7f37" }));
    svg.append(svgEl("text", { x: x(v.ci ? v.ci[1] : v.rate || 0) + 8, y: y + 4 }, pct(v.rate)));
  });
  svg.append(svgEl("line", { x1: left, x2: left, y1: 2, y2: height - 20, stroke: "#d0d7de" }));
  svg.append(svgEl("text", { x: left, y: height - 6 }, "0%"));
  svg.append(svgEl("text", { x: x(max) - 20, y: height - 6 }, pct(max)));
  return svg;
}

function pct(value) {
  return typeof value === "number" ? `${(value * 100).toFixed(2)}%` : "–";
}

function interval(ci, format) {
  return Array.isArray(ci) ? `[${format(ci[0])}, ${format(ci[1])}]` : "–";
}

function metricName(metric) {
  if (!metric || typeof metric !== "object") return String(metric || "–");
  return `${metric.event} (${metric.kind}${metric.valueField ? ", " + metric.valueField : ""})`;
}

function experimentBlock(exp) {
  const srm = exp.srm || {};
  const num = (n) => (typeof n === "number" ? n.toPrecision(3) : "–");
  const srmBox = h("div", { className: "panel " + (srm.flagged ? "srm-bad" : "srm-ok"), id: "srm-" + exp.flag, role: srm.flagged ? "alert" : null },
    h("strong", { text: srm.flagged ? "Sample ratio mismatch: do not trust these results" : "Sample ratio check passed" }),
    h("p", { text: `chi² ${num(srm.chi2)}, p ${num(srm.p)}; expected ${JSON.stringify(srm.expected || {})}, observed ${JSON.stringify(srm.observed || {})}` }),
    exp.excludedMultiExposed ? h("p", { className: "muted", text: `${exp.excludedMultiExposed} users saw several variations and are excluded.` }) : null);
  const table = h("table", { className: "cards experiment" },
    h("thead", {}, h("tr", {}, ...["Variation", "Exposed", "Converted", "Rate", "95% interval", "Lift", "Lift interval", "p"]
      .map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, ...(exp.variations || []).map((v) => {
      const lift = v.lift;
      const cell = (label, text) => h("td", { "data-label": label, text });
      return h("tr", { "data-variation": v.id },
        cell("Variation", v.id + (v.id === exp.control ? " (control)" : "")),
        cell("Exposed", String(v.exposed)), cell("Converted", String(v.converted)),
        cell("Rate", pct(v.rate)), cell("95% interval", interval(v.ci, pct)),
        cell("Lift", lift ? pct(lift.relative) : "–"),
        cell("Lift interval", lift ? interval(lift.relativeCi, pct) : "–"),
        cell("p", lift && typeof lift.p === "number" ? lift.p.toPrecision(3) : "–"));
    })));
  return h("section", { className: "experiment-block", "aria-labelledby": "exp-" + exp.flag },
    h("h2", { id: "exp-" + exp.flag }, "Experiment ", h("code", { text: exp.flag })),
    h("p", { className: "muted", text: `Metric ${metricName(exp.metric)}, control ${exp.control || "–"}` }),
    srmBox, rateChart(exp), table);
}

async function experimentsPage(key) {
  // The list names the experiment flags; each one's report has the results.
  let keys = key ? [key] : null;
  if (!keys) {
    const listed = await api("GET", "experiments");
    if (!listed.ok) {
      page("Experiments", h("p", { id: "no-experiments", className: "notice", text: "No experiments data on this server." }));
      return;
    }
    keys = (listed.data.experiments || []).map((e) => e.flag);
  }
  const reports = await Promise.all(keys.map((k) => api("GET", "experiments/" + encodeURIComponent(k))));
  const blocks = reports.map((r, i) => (r.ok
    ? experimentBlock(r.data)
    : h("p", { className: "error", text: `${keys[i]}: ${r.data.message || "no report"}` })));
  if (!blocks.length) {
    page("Experiments", h("p", { id: "no-experiments", className: "notice", text: "No experiment flags yet (a flag with an 'experiment' object)." }));
    return;
  }
  page("Experiments", ...blocks);
}

/* ---- usage ------------------------------------------------------------------------- */

async function usagePage() {
  const result = await api("GET", "usage");
  const d = result.data;
  const table = h("table", { id: "usage-table", className: "cards" },
    h("thead", {}, h("tr", {}, ...["Flag", "Evaluations", "By variation", "Last evaluated"].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, ...(d.flags || []).map((row) => h("tr", { "data-key": row.flag },
      h("td", { "data-label": "Flag" }, h("a", { href: "#/flag/" + encodeURIComponent(row.flag), className: "mono", text: row.flag })),
      h("td", { "data-label": "Evaluations", className: "evaluations", text: String(row.evaluations) }),
      h("td", { "data-label": "By variation", text: Object.entries(row.variations).map(([k, v]) => `${k}: ${v}`).join(", ") }),
      h("td", { "data-label": "Last evaluated", text: when(row.last) })))));
  page("Usage",
    h("p", { className: "muted", text: `From ${d.summaries || 0} evaluation summaries sent by SDKs.` }),
    table,
    h("h2", { text: "Cleanup candidates" }),
    h("ul", { id: "cleanup", className: "words" }, ...(d.candidates || []).map((c) =>
      h("li", { "data-key": c.flag }, h("code", { text: c.flag }), ": ", words(c.why)))));
}

/* ---- start ------------------------------------------------------------------------- */

window.addEventListener("hashchange", () => { if (state.session) start(); });
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("sign-out").addEventListener("click", signOut);
  start();
});
