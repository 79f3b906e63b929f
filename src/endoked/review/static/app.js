// endoked review: exam list, exam page, image editor and queue. Every text from the run is written with
// textContent (never innerHTML), so report text and ids show as text whatever they contain.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token") || sessionStorage.getItem("endoked-token") || "";
sessionStorage.setItem("endoked-token", TOKEN);
const LAYERS = [
  ["cam", "CAM", "1"], ["box", "box", "2"], ["mask", "pseudo mask", "3"], ["pred", "prediction", "4"],
  ["reviewed", "reviewed mask", "5"],
];
const SHORTCUTS = {
  "Exam list": [["j / k", "next / previous exam"], ["Enter", "open the exam"], ["/", "search"],
    ["q", "open the queue"]],
  "Exam page": [["j / k", "next / previous image"], ["Enter", "open the image"], ["a", "accept the image"],
    ["r", "reject the image"], ["c", "correct the report fields"], ["Esc", "back to the list"]],
  "Image": [["a", "accept"], ["r", "reject"], ["f", "save the fix (edited box / mask)"],
    ["x", "box tool: drag to draw, drag inside to move"], ["b", "brush"], ["e", "eraser"],
    ["arrows", "move the box (Shift: resize)"], ["s", "re-prompt the segmenter with the box"],
    ["- / =", "brush size"], ["u", "undo"], ["n / p", "next / previous image"], ["Esc", "back to the exam"]],
  "Everywhere": [["1 … 5", "CAM, box, pseudo mask, prediction, reviewed mask on / off"],
    ["[ / ]", "overlay opacity"], ["?", "this help"]],
};
const state = {
  session: null, exams: null, filters: {}, sel: 0, tileSel: 0, opacity: 0.5,
  layers: { cam: false, box: true, mask: true, pred: false, reviewed: true }, keys: null,
  seq: 0,  // the current screen; a screen still loading when another is asked for must not draw over it
};
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
function svgEl(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}
const fmt = (v, d = 3) => (v === null || v === undefined ? "—"
  : typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(d)) : String(v));

function status(text, err) {
  const s = $("#status");
  s.textContent = text;
  s.className = err ? "err" : "";
}

async function api(path, body) {
  const opts = { headers: { "X-Review-Token": TOKEN }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.detail || data.error || res.statusText);
  return data;
}
function frameUrl(exam, image, layer) {
  const q = new URLSearchParams({ exam_id: exam, image, layer, token: TOKEN });
  return "api/frame?" + q.toString();
}
function reviewer() {
  return ($("#reviewer").value || "").trim() || state.session.reviewer || "reviewer";
}

// ---- exam list -------------------------------------------------------------------------------------------

const FILTERS = [
  ["q", "exam id", "search", ""], ["polyp", "report label", "select", ["", "present", "absent", "uncertain"]],
  ["mil", "MIL score ≥", "number", ""], ["quality", "mask quality ≤", "number", ""], ["rank", "mask rank ≤", "number", ""],
  ["source", "mask source", "select", null], ["reviewed", "reviewed", "select", ["", "none", "some", "all"]],
  ["disagree", "extract backends", "select", ["", "disagree", "agree"]],
];

function examPasses(e, f) {
  const polyp = e.corrected.polyp !== undefined ? e.corrected.polyp : e.polyp;
  if (f.q && !e.exam_id.toLowerCase().includes(f.q.toLowerCase())) return false;
  if (f.polyp && polyp !== f.polyp) return false;
  if (f.mil !== "" && f.mil !== undefined && !(e.mil_max !== null && e.mil_max >= Number(f.mil))) return false;
  if (f.quality !== "" && f.quality !== undefined && !(e.quality_min !== null && e.quality_min <= Number(f.quality))) return false;
  if (f.rank !== "" && f.rank !== undefined && !(e.rank_min !== null && e.rank_min <= Number(f.rank))) return false;
  if (f.source && !e.sources.includes(f.source)) return false;
  if (f.reviewed === "none" && e.n_reviewed > 0) return false;
  if (f.reviewed === "some" && e.n_reviewed === 0) return false;
  if (f.reviewed === "all" && e.n_reviewed < Math.max(1, e.n_masks)) return false;
  if (f.disagree === "disagree" && e.disagree !== true) return false;
  if (f.disagree === "agree" && e.disagree === true) return false;
  return true;
}

async function showExams() {
  const seq = state.seq;
  state.exams = await api("api/exams");
  if (seq !== state.seq) return;
  const sources = [...new Set(state.exams.flatMap((e) => e.sources))].sort();
  const main = $("#main");
  main.replaceChildren();
  const bar = el("div", { class: "filters" });
  for (const [name, label, kind, options] of FILTERS) {
    let input;
    if (kind === "select") {
      input = el("select", { id: "f-" + name }, (options || ["", ...sources]).map((o) => el("option", { value: o }, o || "any")));
    } else {
      input = el("input", { id: "f-" + name, type: kind, step: kind === "number" ? "0.05" : null });
    }
    input.value = state.filters[name] || "";
    input.addEventListener("input", () => { state.filters[name] = input.value; state.sel = 0; renderExamRows(); });
    bar.append(el("label", {}, label, input));
  }
  main.append(bar, el("div", { class: "count", id: "count" }), el("table", { id: "exams" },
    el("thead", {}, el("tr", {}, ["exam", "report label", "count", "images", "masks", "reviewed", "MIL max",
      "quality min", "rank min", "mask sources", "backends"].map((h) => el("th", {}, h)))),
    el("tbody")));
  renderExamRows();
  state.keys = examListKeys;
}

function renderExamRows() {
  const rows = state.exams.filter((e) => examPasses(e, state.filters));
  state.visible = rows;
  state.sel = Math.min(state.sel, Math.max(0, rows.length - 1));
  $("#count").textContent = `${rows.length} of ${state.exams.length} exams`;
  const body = $("#exams tbody");
  body.replaceChildren(...rows.map((e, i) => {
    const label = e.corrected.polyp !== undefined ? `${e.corrected.polyp} (corrected; was ${e.polyp})` : e.polyp;
    const count = e.corrected.polyp_count !== undefined ? `${e.corrected.polyp_count} (corrected)` : e.polyp_count;
    return el("tr", { class: i === state.sel ? "sel" : null, dataset: { exam: e.exam_id },
      on: { click: () => openExam(e.exam_id) } },
    el("td", {}, e.exam_id), el("td", {}, fmt(label)), el("td", {}, fmt(count)), el("td", {}, e.n_images),
    el("td", {}, e.n_masks), el("td", {}, `${e.n_reviewed}`), el("td", {}, fmt(e.mil_max)), el("td", {}, fmt(e.quality_min)),
    el("td", {}, fmt(e.rank_min)), el("td", {}, e.sources.join(", ")),
    el("td", {}, e.disagree === null ? "—" : e.disagree ? "disagree" : "agree"));
  }));
}

function openExam(id) { location.hash = "#/exam/" + encodeURIComponent(id); }

function examListKeys(ev) {
  const n = (state.visible || []).length;
  if (ev.key === "j" || ev.key === "ArrowDown") state.sel = Math.min(n - 1, state.sel + 1);
  else if (ev.key === "k" || ev.key === "ArrowUp") state.sel = Math.max(0, state.sel - 1);
  else if (ev.key === "Enter" && n) return openExam(state.visible[state.sel].exam_id);
  else if (ev.key === "/") { ev.preventDefault(); return $("#f-q").focus(); }
  else if (ev.key === "q") { location.hash = "#/queue"; return; }
  else return;
  ev.preventDefault();
  renderExamRows();
  const row = $("#exams tbody tr.sel");
  if (row) row.scrollIntoView({ block: "nearest" });
}

// ---- overlays shared by the grid and the editor ----------------------------------------------------------

function layerControls(onChange) {
  const wrap = el("div", { class: "layers" });
  for (const [name, label, key] of LAYERS) {
    const box = el("input", { type: "checkbox", id: "layer-" + name, checked: state.layers[name] });
    box.addEventListener("change", () => { state.layers[name] = box.checked; onChange(); });
    wrap.append(el("label", { title: `key ${key}` }, box, " " + label));
  }
  const slider = el("input", { type: "range", id: "opacity", min: 0, max: 100, value: Math.round(state.opacity * 100) });
  slider.addEventListener("input", () => { state.opacity = slider.value / 100; onChange(); });
  wrap.append(el("label", { title: "keys [ and ]" }, "opacity ", slider));
  return wrap;
}

function applyLayers(root) {
  for (const node of root.querySelectorAll("[data-layer]")) {
    const on = state.layers[node.dataset.layer];
    node.style.display = on ? "" : "none";
    node.style.opacity = node.dataset.layer === "box" ? 1 : state.opacity;
  }
  const slider = root.querySelector("#opacity");
  if (slider) slider.value = Math.round(state.opacity * 100);
  for (const [name] of LAYERS) {
    const box = root.querySelector("#layer-" + name);
    if (box) box.checked = state.layers[name];
  }
}

function globalLayerKeys(ev, root) {
  const layer = LAYERS.find((l) => l[2] === ev.key);
  if (layer) state.layers[layer[0]] = !state.layers[layer[0]];
  else if (ev.key === "[") state.opacity = Math.max(0, state.opacity - 0.1);
  else if (ev.key === "]") state.opacity = Math.min(1, state.opacity + 0.1);
  else return false;
  applyLayers(root);
  return true;
}

function stackFor(img, withEditable) {
  const stack = el("div", { class: "stack" });
  const base = el("img", { src: frameUrl(img.exam_id, img.image, "image"), alt: img.image, class: "base", draggable: "false" });
  stack.append(base);
  const layers = [["cam", img.has_cam], ["mask", img.has_mask], ["pred", img.has_pred],
    ["reviewed", !withEditable && img.decision && img.decision.action === "fix"]];
  for (const [layer, has] of layers) {
    if (has) {
      const url = frameUrl(img.exam_id, img.image, layer) + (layer === "reviewed" ? "&v=" + encodeURIComponent(img.decision.mask_after) : "");
      stack.append(el("img", { src: url, class: "ov " + layer, dataset: { layer }, alt: "", draggable: "false" }));
    }
  }
  const svg = svgEl("svg", { class: "ov", viewBox: `0 0 ${img.width} ${img.height}`, preserveAspectRatio: "none" });
  svg.dataset.layer = "box";
  for (const b of img.boxes || []) {
    svg.append(svgEl("rect", { class: "box", x: b[0], y: b[1], width: b[2] - b[0], height: b[3] - b[1] }));
  }
  stack.append(svg);
  return stack;
}

// ---- exam page -------------------------------------------------------------------------------------------

function highlighted(text, spans) {
  const out = el("div", { class: "report", id: "report" });
  let pos = 0;
  for (const [start, end, field] of spans) {
    if (start < pos || end <= start || end > text.length) continue;
    out.append(text.slice(pos, start));
    out.append(el("mark", { class: "f-" + String(field).replace(/[^a-z_]/g, ""), title: field }, text.slice(start, end)));
    pos = end;
  }
  out.append(text.slice(pos));
  return out;
}

async function showExam(id) {
  const seq = state.seq;
  const exam = await api("api/exam?" + new URLSearchParams({ exam_id: id }));
  if (seq !== state.seq) return;
  state.exam = exam;
  state.tileSel = Math.min(state.tileSel, Math.max(0, exam.images.length - 1));
  const main = $("#main");
  const fields = [...new Set(exam.spans.map((s) => s[2]))];
  const labels = el("table", { id: "labels" }, Object.entries(exam.labels).filter(([k]) => k !== "polyps")
    .map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, fmt(v)))),
  exam.labels.polyps.map((p, i) => el("tr", {}, el("th", {}, `polyp ${i + 1}`),
    el("td", {}, Object.entries(p).map(([k, v]) => `${k} ${fmt(v, 1)}`).join(", ")))));
  const fix = exam.corrected || {};
  const polypSel = el("select", { id: "fix-polyp" }, ["present", "absent", "uncertain"].map((o) => el("option", { value: o }, o)));
  polypSel.value = fix.polyp !== undefined ? fix.polyp : exam.polyp || "uncertain";
  const countIn = el("input", { id: "fix-count", type: "number", min: 0, step: 1 });
  const cnt = fix.polyp_count !== undefined ? fix.polyp_count : exam.polyp_count;
  countIn.value = cnt === null || cnt === undefined ? "" : cnt;
  const save = el("button", { type: "button", id: "fix-save" }, "Save correction");
  save.addEventListener("click", () => saveLabels(exam, polypSel.value, countIn.value));
  const form = el("div", { id: "correct" }, el("h3", {}, "Correct the report fields"),
    el("label", {}, "polyp ", polypSel), " ", el("label", {}, "count ", countIn), " ", save,
    Object.keys(fix).length ? el("p", { class: "muted" }, "corrected: " + JSON.stringify(fix)) : null);
  const grid = el("div", { class: "grid", id: "grid" }, exam.images.map((img, i) => {
    const d = img.decision;
    return el("div", { class: "tile" + (i === state.tileSel ? " sel" : ""), dataset: { image: img.image },
      on: { click: () => openImage(exam.exam_id, img.image) } },
    stackFor(img, false),
    el("div", { class: "cap" }, img.image, " · MIL ", fmt(img.mil_score), " · quality ", fmt(img.quality), " ",
      d ? el("span", { class: "badge " + d.action }, d.action) : null));
  }));
  main.replaceChildren(
    el("p", {}, el("a", { href: "#/" }, "← exams")),
    el("h2", {}, "Exam ", el("span", { id: "exam-id" }, exam.exam_id)),
    el("div", { class: "cols" },
      el("div", {}, el("h3", {}, "Report"), el("div", { class: "legend" }, fields.map((f) => el("mark", { class: "f-" + f }, f))),
        highlighted(exam.report, exam.spans),
        exam.pathology_text ? el("div", {}, el("h3", {}, "Pathology"), el("div", { class: "report" }, exam.pathology_text)) : null),
      el("div", {}, el("h3", {}, "Extracted labels"), labels, form)),
    el("h3", {}, `Images (${exam.images.length})`), layerControls(() => applyLayers(main)), grid);
  applyLayers(main);
  state.keys = examKeys;
  waitForImages(grid);
}

function waitForImages(root) {
  document.body.dataset.loaded = "0";
  const imgs = [...root.querySelectorAll("img")];
  let left = imgs.length;
  const done = () => {
    left -= 1;
    if (left <= 0) { document.body.dataset.loaded = "1"; window.endokedLoadedAt = performance.now(); }
  };
  if (!left) { document.body.dataset.loaded = "1"; return; }
  for (const img of imgs) {
    if (img.complete) done();
    else { img.addEventListener("load", done, { once: true }); img.addEventListener("error", done, { once: true }); }
  }
}

async function saveLabels(exam, polyp, count) {
  try {
    await api("api/label", { exam_id: exam.exam_id, field: "polyp", value: polyp, reviewer: reviewer() });
    await api("api/label", { exam_id: exam.exam_id, field: "polyp_count", value: count === "" ? null : Number(count), reviewer: reviewer() });
    status(`saved: report fields of ${exam.exam_id}`);
    showExam(exam.exam_id);
  } catch (err) { status("not saved: " + err.message, true); }
}

function openImage(exam, image, queue) {
  location.hash = (queue ? "#/qimage/" : "#/image/") + encodeURIComponent(exam) + "/" + encodeURIComponent(image);
}

async function decide(img, action, maskPng) {
  const body = { exam_id: img.exam_id, image: img.image, action, reviewer: reviewer() };
  if (maskPng) body.mask_png = maskPng;
  try {
    await api("api/decision", body);
    status(`saved: ${action} ${img.image}`);
    return true;
  } catch (err) {
    status("not saved: " + err.message, true);
    return false;
  }
}

async function examKeys(ev) {
  const exam = state.exam;
  const n = exam.images.length;
  if (globalLayerKeys(ev, $("#main"))) return;
  if (ev.key === "j" || ev.key === "ArrowRight") state.tileSel = Math.min(n - 1, state.tileSel + 1);
  else if (ev.key === "k" || ev.key === "ArrowLeft") state.tileSel = Math.max(0, state.tileSel - 1);
  else if (ev.key === "Enter" && n) return openImage(exam.exam_id, exam.images[state.tileSel].image);
  else if ((ev.key === "a" || ev.key === "r") && n) {
    const img = exam.images[state.tileSel];
    if (await decide(img, ev.key === "a" ? "accept" : "reject")) {
      state.tileSel = Math.min(n - 1, state.tileSel + 1);
      return showExam(exam.exam_id);
    }
    return;
  } else if (ev.key === "c") { ev.preventDefault(); return $("#fix-polyp").focus(); }
  else if (ev.key === "Escape") { location.hash = "#/"; return; }
  else return;
  ev.preventDefault();
  document.querySelectorAll(".tile").forEach((t, i) => t.classList.toggle("sel", i === state.tileSel));
  const t = document.querySelector(".tile.sel");
  if (t) t.scrollIntoView({ block: "nearest" });
}

// ---- image editor ----------------------------------------------------------------------------------------

async function showImage(examId, image, queueMode) {
  const seq = state.seq;
  let list;
  if (queueMode) {
    if (!state.queue) state.queue = await api("api/queue");
    list = state.queue;
  } else {
    if (!state.exam || state.exam.exam_id !== examId) state.exam = await api("api/exam?" + new URLSearchParams({ exam_id: examId }));
    list = state.exam.images;
  }
  let idx = list.findIndex((x) => x.exam_id === examId && x.image === image);
  let img = list[idx];
  if (!img) {
    const exam = await api("api/exam?" + new URLSearchParams({ exam_id: examId }));
    img = exam.images.find((x) => x.image === image);
    idx = -1;
    if (!img) { status("no such image", true); return; }
  }
  if (seq !== state.seq) return;
  const ed = {
    img, list, idx, queueMode, tool: "box", brush: Math.max(4, Math.round(Math.max(img.width, img.height) / 40)),
    box: img.boxes && img.boxes.length ? [...img.boxes[0]] : null, history: [], dirty: false, prompting: 0,
  };
  state.editor = ed;
  const main = $("#main");
  const stack = stackFor(img, true);
  stack.classList.add("editor-stack");
  const canvas = el("canvas", { class: "ov edit", width: img.width, height: img.height, id: "edit", dataset: { layer: "reviewed" } });
  const svg = stack.querySelector("svg");
  stack.insertBefore(canvas, svg);
  const editBox = svgEl("rect", { class: "box edit", id: "edit-box" });
  svg.append(editBox);
  ed.canvas = canvas; ed.ctx = canvas.getContext("2d"); ed.editBox = editBox; ed.stack = stack;
  const tools = el("div", { class: "toolbar" },
    el("button", { type: "button", id: "btn-accept", on: { click: () => act("accept") } }, "Accept (a)"),
    el("button", { type: "button", id: "btn-reject", on: { click: () => act("reject") } }, "Reject (r)"),
    el("button", { type: "button", id: "btn-fix", on: { click: () => act("fix") } }, "Save fix (f)"),
    el("span", { class: "muted" }, " tools: "),
    ...[["box", "Box (x)"], ["brush", "Brush (b)"], ["erase", "Eraser (e)"]].map(([t, label]) =>
      el("button", { type: "button", id: "tool-" + t, class: t === ed.tool ? "on" : null, on: { click: () => setTool(t) } }, label)),
    el("button", { type: "button", id: "btn-prompt", on: { click: () => reprompt() } }, "Re-prompt (s)"),
    el("button", { type: "button", id: "btn-undo", on: { click: () => undo() } }, "Undo (u)"));
  const d = img.decision;
  main.replaceChildren(
    el("p", {}, queueMode ? el("a", { href: "#/queue" }, "← queue") : el("a", { href: "#/exam/" + encodeURIComponent(img.exam_id) }, "← exam "),
      queueMode ? null : el("span", {}, img.exam_id)),
    el("h2", {}, el("span", { id: "image-id" }, img.image), " ",
      el("span", { class: "muted" }, idx >= 0 ? `${idx + 1} / ${list.length}` : "")),
    el("p", { id: "image-info" }, `exam ${img.exam_id} · MIL ${fmt(img.mil_score)} · quality ${fmt(img.quality)} · rank ${fmt(img.rank)} · source ${fmt(img.source)} · `,
      d ? el("span", { class: "badge " + d.action, id: "decision" }, `${d.action} by ${d.reviewer}`) : el("span", { id: "decision" }, "not reviewed"),
      state.session.segmenter ? ` · segmenter ${state.session.segmenter}` : " · live re-prompt off"),
    tools, layerControls(() => applyLayers(main)), el("div", { class: "editor" }, stack));
  applyLayers(main);
  state.keys = imageKeys;
  drawBox();
  await loadEditableMask(ed);
  if (seq !== state.seq) return;
  bindPointer(ed);
  waitForImages(stack);
}

function loadEditableMask(ed) {
  const img = ed.img;
  const d = img.decision;
  const layer = d && d.action === "fix" ? "reviewed" : img.has_mask ? "mask" : null;
  if (!layer) return Promise.resolve();
  return new Promise((resolve) => {
    const src = new Image();
    src.onload = () => { recolour(ed, src); resolve(); };
    src.onerror = () => resolve();
    src.src = frameUrl(img.exam_id, img.image, layer) + (d && d.mask_after ? "&v=" + encodeURIComponent(d.mask_after) : "");
  });
}

function recolour(ed, source) {
  const c = ed.ctx;
  c.clearRect(0, 0, ed.canvas.width, ed.canvas.height);
  c.globalCompositeOperation = "source-over";
  c.drawImage(source, 0, 0, ed.canvas.width, ed.canvas.height);
  c.globalCompositeOperation = "source-in";
  c.fillStyle = "rgb(255,200,0)";
  c.fillRect(0, 0, ed.canvas.width, ed.canvas.height);
  c.globalCompositeOperation = "source-over";
}

function snapshot(ed) {
  ed.history.push({ data: ed.ctx.getImageData(0, 0, ed.canvas.width, ed.canvas.height), box: ed.box ? [...ed.box] : null });
  if (ed.history.length > 30) ed.history.shift();
}
function undo() {
  const ed = state.editor;
  const last = ed.history.pop();
  if (!last) return;
  ed.ctx.putImageData(last.data, 0, 0);
  ed.box = last.box;
  ed.dirty = true;
  drawBox();
}

function drawBox() {
  const ed = state.editor;
  const r = ed.editBox;
  if (!ed.box) { r.setAttribute("width", 0); r.setAttribute("height", 0); return; }
  const [x0, y0, x1, y1] = ed.box;
  r.setAttribute("x", x0); r.setAttribute("y", y0);
  r.setAttribute("width", Math.max(0, x1 - x0)); r.setAttribute("height", Math.max(0, y1 - y0));
  r.dataset.box = ed.box.map((v) => v.toFixed(1)).join(",");
}

function setTool(tool) {
  state.editor.tool = tool;
  document.querySelectorAll(".toolbar button[id^=tool-]").forEach((b) => b.classList.toggle("on", b.id === "tool-" + tool));
}

function toImage(ed, ev) {
  const rect = ed.canvas.getBoundingClientRect();
  return [(ev.clientX - rect.left) * ed.canvas.width / rect.width, (ev.clientY - rect.top) * ed.canvas.height / rect.height];
}

function bindPointer(ed) {
  let drag = null;
  const target = ed.stack;
  target.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    target.setPointerCapture(ev.pointerId);
    const [x, y] = toImage(ed, ev);
    snapshot(ed);
    if (ed.tool === "box") {
      const b = ed.box;
      const inside = b && x > b[0] && x < b[2] && y > b[1] && y < b[3];
      drag = inside ? { kind: "move", x, y, box: [...b] } : { kind: "draw", x, y };
    } else {
      drag = { kind: "paint" };
      paint(ed, x, y);
    }
  });
  target.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const [x, y] = toImage(ed, ev);
    if (drag.kind === "move") {
      const dx = x - drag.x, dy = y - drag.y;
      ed.box = [drag.box[0] + dx, drag.box[1] + dy, drag.box[2] + dx, drag.box[3] + dy];
    } else if (drag.kind === "draw") {
      ed.box = [Math.min(x, drag.x), Math.min(y, drag.y), Math.max(x, drag.x), Math.max(y, drag.y)];
    } else paint(ed, x, y);
    drawBox();
  });
  const end = () => {
    if (drag && drag.kind !== "paint") reprompt();
    drag = null;
  };
  target.addEventListener("pointerup", end);
  target.addEventListener("pointercancel", end);
}

function paint(ed, x, y) {
  const c = ed.ctx;
  c.globalCompositeOperation = ed.tool === "erase" ? "destination-out" : "source-over";
  c.fillStyle = "rgb(255,200,0)";
  c.beginPath();
  c.arc(x, y, ed.brush, 0, 2 * Math.PI);
  c.fill();
  c.globalCompositeOperation = "source-over";
  ed.dirty = true;
}

async function reprompt() {
  const ed = state.editor;
  if (!ed.box) return;
  ed.dirty = true;
  if (!state.session.segmenter) { status("box moved (live re-prompt off: paint the mask)"); return; }
  const ticket = ++ed.prompting;
  document.body.dataset.prompting = "1";
  try {
    const res = await api("api/segment", { exam_id: ed.img.exam_id, image: ed.img.image, box: ed.box });
    if (ticket !== ed.prompting) return;
    await new Promise((resolve) => {
      const m = new Image();
      m.onload = () => { recolour(ed, m); resolve(); };
      m.onerror = resolve;
      m.src = "data:image/png;base64," + res.mask_png;
    });
    status(`re-prompted: ${res.area} px`);
  } catch (err) {
    status("re-prompt failed: " + err.message, true);
  } finally {
    if (ticket === ed.prompting) document.body.dataset.prompting = "0";
  }
}

function maskPng(ed) {
  const { width, height } = ed.canvas;
  const src = ed.ctx.getImageData(0, 0, width, height);
  const out = document.createElement("canvas");
  out.width = width; out.height = height;
  const octx = out.getContext("2d");
  const dst = octx.createImageData(width, height);
  for (let i = 0; i < src.data.length; i += 4) {
    const on = src.data[i + 3] > 127 ? 255 : 0;
    dst.data[i] = on; dst.data[i + 1] = on; dst.data[i + 2] = on; dst.data[i + 3] = 255;
  }
  octx.putImageData(dst, 0, 0);
  return out.toDataURL("image/png");
}

async function act(action) {
  const ed = state.editor;
  if (action === "fix" && ed.prompting && document.body.dataset.prompting === "1") {
    await new Promise((r) => setTimeout(r, 50));
    return act(action);
  }
  if (await decide(ed.img, action, action === "fix" ? maskPng(ed) : null)) {
    state.queue = ed.queueMode ? state.queue : null;
    if (state.exam && state.exam.exam_id === ed.img.exam_id) state.exam = null;
    step(1, true);
  }
}

function step(delta, afterDecision) {
  const ed = state.editor;
  let list = ed.list;
  let idx = ed.idx;
  if (ed.queueMode && afterDecision) {  // the decided image leaves the queue
    list.splice(idx, 1);
    idx -= 1;
  }
  const next = list[idx + delta];
  if (next) openImage(next.exam_id, next.image, ed.queueMode);
  else if (afterDecision) showImage(ed.img.exam_id, ed.img.image, ed.queueMode);
}

function imageKeys(ev) {
  const ed = state.editor;
  if (globalLayerKeys(ev, $("#main"))) return;
  const k = ev.key;
  if (k === "a") act("accept");
  else if (k === "r") act("reject");
  else if (k === "f") act("fix");
  else if (k === "x") setTool("box");
  else if (k === "b") setTool("brush");
  else if (k === "e") setTool("erase");
  else if (k === "s") reprompt();
  else if (k === "u" || (k === "z" && (ev.ctrlKey || ev.metaKey))) undo();
  else if (k === "-") ed.brush = Math.max(1, ed.brush - 2);
  else if (k === "=" || k === "+") ed.brush += 2;
  else if (k === "n") step(1);
  else if (k === "p") step(-1);
  else if (k === "Escape") location.hash = ed.queueMode ? "#/queue" : "#/exam/" + encodeURIComponent(ed.img.exam_id);
  else if (k.startsWith("Arrow") && ed.box) {
    const unit = Math.max(1, Math.round(Math.max(ed.img.width, ed.img.height) / 50));
    const dx = k === "ArrowLeft" ? -unit : k === "ArrowRight" ? unit : 0;
    const dy = k === "ArrowUp" ? -unit : k === "ArrowDown" ? unit : 0;
    if (!ev.repeat) snapshot(ed);
    const b = ed.box;
    ed.box = ev.shiftKey ? [b[0], b[1], Math.max(b[0] + 2, b[2] + dx), Math.max(b[1] + 2, b[3] + dy)]
      : [b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy];
    drawBox();
    clearTimeout(ed.promptTimer);
    ed.promptTimer = setTimeout(reprompt, 200);
  } else return;
  ev.preventDefault();
}

// ---- queue -----------------------------------------------------------------------------------------------

async function showQueue() {
  const seq = state.seq;
  state.queue = await api("api/queue");
  if (seq !== state.seq) return;
  const main = $("#main");
  main.replaceChildren(el("h2", {}, "Queue: least certain labels first"),
    el("p", { class: "muted" }, `${state.queue.length} unreviewed pseudo masks, lowest mask quality first. Enter starts.`),
    el("table", { id: "queue" }, el("thead", {}, el("tr", {}, ["exam", "image", "quality", "MIL score", "source"].map((h) => el("th", {}, h)))),
      el("tbody", {}, state.queue.map((q) => el("tr", { on: { click: () => openImage(q.exam_id, q.image, true) } },
        el("td", {}, q.exam_id), el("td", {}, q.image), el("td", {}, fmt(q.quality)), el("td", {}, fmt(q.mil_score)),
        el("td", {}, fmt(q.source)))))));
  state.keys = (ev) => {
    if (ev.key === "Enter" && state.queue.length) openImage(state.queue[0].exam_id, state.queue[0].image, true);
    else if (ev.key === "Escape") location.hash = "#/";
  };
}

// ---- shell -----------------------------------------------------------------------------------------------

function renderHelp() {
  const help = $("#help");
  help.replaceChildren(el("h3", {}, "Keyboard shortcuts"), ...Object.entries(SHORTCUTS).map(([screen, keys]) =>
    el("div", {}, el("h4", {}, screen), el("table", {}, keys.map(([k, what]) => el("tr", {}, el("td", {}, el("kbd", {}, k)), el("td", {}, what)))))));
}

async function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  document.body.dataset.view = parts[0] || "exams";
  state.keys = null;  // no key acts on the previous screen while the next one loads
  state.seq += 1;
  try {
    if (parts[0] === "exam") await showExam(parts[1]);
    else if (parts[0] === "image" || parts[0] === "qimage") await showImage(parts[1], parts.slice(2).join("/"), parts[0] === "qimage");
    else if (parts[0] === "queue") await showQueue();
    else await showExams();
  } catch (err) {
    status("error: " + err.message, true);
  }
}

document.addEventListener("keydown", (ev) => {
  const t = ev.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) {
    if (ev.key === "Escape") t.blur();
    return;
  }
  if (ev.ctrlKey && ev.key !== "z") return;
  if (ev.altKey || ev.metaKey) return;
  if (ev.key === "?") { $("#help").hidden = !$("#help").hidden; return; }
  if (state.keys) state.keys(ev);
});

async function start() {
  state.session = await api("api/session");
  $("#run").textContent = state.session.run;
  const saved = localStorage.getItem("endoked-reviewer");
  $("#reviewer").value = saved || state.session.reviewer;
  $("#reviewer").addEventListener("change", () => localStorage.setItem("endoked-reviewer", $("#reviewer").value));
  $("#help-btn").addEventListener("click", () => { $("#help").hidden = !$("#help").hidden; });
  renderHelp();
  window.addEventListener("hashchange", route);
  await route();
}

start().catch((err) => status("error: " + err.message, true));
