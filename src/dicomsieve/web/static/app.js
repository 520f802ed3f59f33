// dicomsieve serve: the page. Plain DOM, no framework, no inline code (the server's
// Content-Security-Policy allows only this file). Every text from DICOM headers goes in
// with textContent, never as HTML. Views: #/ (import and the series table),
// #/series/ID (loadables), #/view/ID (viewer), #/localizer/ID (reference lines).

const SVG = "http://www.w3.org/2000/svg";
const OPPOSITE = { L: "R", R: "L", A: "P", P: "A", S: "I", I: "S" };
const KIND_GROUPS = [
  ["Volumes and sequences", ["volume", "sequence"]],
  ["Localizers", ["localizer"]],
  ["Images", ["image"]],
  ["Without pixels", ["unsupported"]],
];

const main = document.getElementById("main");
const crumbs = document.getElementById("crumbs");
const notice = document.getElementById("notice");
let generation = 0; // bumped on every navigation; stale async work checks it

// ---------------------------------------------------------------- helpers

// Children as nodes: arrays flattened, null/undefined/false dropped, the rest as text.
function nodes(children) {
  return children
    .flat(Infinity)
    .filter((child) => child !== null && child !== undefined && child !== false)
    .map((child) => (child instanceof Node ? child : document.createTextNode(String(child))));
}

function put(el, ...children) {
  el.replaceChildren(...nodes(children));
}

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  el.append(...nodes(children));
  return el;
}

function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}

class ApiFailure extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.error) || "error";
  }
}

async function api(path, options = {}) {
  const init = { credentials: "same-origin", ...options };
  if (options.json !== undefined) {
    init.method = init.method || "POST";
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(options.json);
    delete init.json;
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (response.status === 401) {
      say("Not signed in: open the address that `dicomsieve serve` printed.", true);
    }
    throw new ApiFailure(response.status, body);
  }
  return response.json();
}

function say(text, bad = false) {
  notice.textContent = text;
  notice.className = bad ? "bad" : "";
}

function setCrumbs(...items) {
  put(crumbs,
    ...items.map(([label, href]) => (href ? h("a", { href }, label) : h("span", {}, label))),
  );
}

function failure(err) {
  return h("p", { class: "error", role: "alert" }, `${err.code || "error"}: ${err.message}`);
}

function fmt(value, digits = 2) {
  return typeof value === "number" ? value.toFixed(digits).replace(/\.?0+$/, "") : "";
}

function dicomDate(value) {
  return value && /^\d{8}$/.test(value)
    ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6)}`
    : value || "";
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Poll a job until it ends; `onProgress(status)` after each answer.
async function follow(jobId, onProgress) {
  for (;;) {
    const status = await api(`/api/jobs/${encodeURIComponent(jobId)}`);
    onProgress(status);
    if (status.state !== "running") return status;
    await delay(250);
  }
}

// An <img> fed by fetch: one request at a time, the latest wanted one wins, and the
// answer's orientation headers are kept. `onShown(params, headers)` after each image.
class PlaneImage {
  constructor(alt, onShown) {
    this.img = h("img", { alt, class: "plane", draggable: "false" });
    this.onShown = onShown;
    this.busy = false;
    this.wanted = null;
    this.url = null;
  }

  show(src, params) {
    this.wanted = { src, params };
    if (!this.busy) this.next();
  }

  async next() {
    const job = this.wanted;
    if (!job) return;
    this.wanted = null;
    this.busy = true;
    try {
      const response = await fetch(job.src, { credentials: "same-origin" });
      if (response.ok) {
        const blob = await response.blob();
        const url = URL.createObjectURL(blob);
        await new Promise((resolve) => {
          this.img.addEventListener("load", resolve, { once: true });
          this.img.addEventListener("error", resolve, { once: true });
          this.img.src = url;
        });
        if (this.url) URL.revokeObjectURL(this.url);
        this.url = url;
        for (const [key, value] of Object.entries(job.params)) this.img.dataset[key] = value;
        if (this.onShown) this.onShown(job.params, response.headers);
      } else {
        say(`image: HTTP ${response.status}`, true);
      }
    } finally {
      this.busy = false;
      if (this.wanted) this.next();
    }
  }
}

// ---------------------------------------------------------------- home: import + table

const table = { rows: [], sort: "patient_name", ascending: true, filter: "", summary: "" };

const COLUMNS = [
  ["patient_name", "Patient"],
  ["patient_id", "Patient ID"],
  ["study_date", "Study date"],
  ["study_description", "Study"],
  ["series_number", "#"],
  ["series_description", "Series"],
  ["modality", "Modality"],
  ["instances", "Instances"],
  ["loadables", "Loadables"],
];

const KIND_ORDER = ["volume", "sequence", "localizer", "image", "unsupported"];

function loadableSummary(row) {
  const kinds = Object.entries(row.loadables).sort(
    ([a], [b]) => KIND_ORDER.indexOf(a) - KIND_ORDER.indexOf(b),
  );
  const parts = kinds.map(
    ([kind, n]) => `${n} ${kind}${n > 1 && kind !== "unsupported" ? "s" : ""}`,
  );
  return parts.length ? parts.join(", ") : "not examined";
}

function cellValue(row, key) {
  if (key === "loadables") return loadableSummary(row);
  if (key === "study_date") return dicomDate(row.study_date);
  if (key === "instances") {
    return row.frames !== row.instances ? `${row.instances} (${row.frames} frames)` : row.instances;
  }
  const value = row[key];
  return value === null || value === undefined ? "" : value;
}

function sortedRows() {
  const needle = table.filter.trim().toLowerCase();
  const rows = table.rows.filter(
    (row) =>
      !needle ||
      COLUMNS.some(([key]) => String(cellValue(row, key)).toLowerCase().includes(needle)),
  );
  const key = table.sort;
  const sign = table.ascending ? 1 : -1;
  rows.sort((a, b) => {
    const x = a[key] === null || a[key] === undefined ? "" : a[key];
    const y = b[key] === null || b[key] === undefined ? "" : b[key];
    if (typeof x === "number" && typeof y === "number") return sign * (x - y);
    return sign * String(cellValue(a, key)).localeCompare(String(cellValue(b, key)));
  });
  return rows;
}

function renderTable(container) {
  const summary = table.summary;
  const head = h(
    "tr",
    {},
    COLUMNS.map(([key, label]) =>
      h(
        "th",
        {
          scope: "col",
          "aria-sort":
            table.sort === key ? (table.ascending ? "ascending" : "descending") : "none",
        },
        h(
          "button",
          {
            class: "sort",
            type: "button",
            onclick: () => {
              table.ascending = table.sort === key ? !table.ascending : true;
              table.sort = key;
              renderTable(container);
            },
          },
          label,
          table.sort === key ? (table.ascending ? " ▲" : " ▼") : "",
        ),
      ),
    ),
  );
  const rows = sortedRows();
  const body = rows.map((row) =>
    h(
      "tr",
      { dataset: { seriesId: row.id } },
      COLUMNS.map(([key]) =>
        key === "series_description"
          ? h("td", {}, h("a", { href: `#/series/${row.id}` }, row.series_description || "(none)"))
          : h("td", { class: ["series_number", "instances"].includes(key) ? "num" : "" },
              String(cellValue(row, key))),
      ),
    ),
  );
  put(container,
    h("p", { class: "muted" }, summary, rows.length !== table.rows.length
      ? ` — ${rows.length} shown` : ""),
    h("table", { class: "series-table" }, h("thead", {}, head), h("tbody", {}, body)),
  );
}

async function refreshTable(container) {
  const data = await api("/api/series");
  table.rows = data.series;
  const summary =
    `${data.series.length} series in ${data.studies} stud${data.studies === 1 ? "y" : "ies"} ` +
    `of ${data.patients} patient${data.patients === 1 ? "" : "s"}`;
  if (!data.series.length) {
    put(container, h("p", { class: "muted" }, "The index is empty: import a folder."));
    return;
  }
  table.summary = summary;
  renderTable(container);
}

function scanText(status) {
  if (status.phase === "scanning") {
    return status.total ? `scanning: ${status.done} of ${status.total} files` : "scanning…";
  }
  if (status.phase === "examining") {
    return `examining: ${status.done} of ${status.total} series`;
  }
  return status.phase;
}

function importSummary(result) {
  const s = result.scan;
  const codes = Object.entries(s.by_code || {}).map(([code, n]) => `${code} ${n}`);
  return (
    `${s.files} files: ${s.indexed} indexed, ${s.unchanged} unchanged, ` +
    `${s.not_dicom} not DICOM, ${s.errors} errors, ${s.ignored} ignored` +
    (codes.length ? ` (${codes.join(", ")})` : "") +
    ` in ${fmt(s.seconds, 1)} s; ${result.series} series in the index`
  );
}

function viewHome() {
  setCrumbs(["Series", null]);
  const tableBox = h("div", { id: "series-table" }, h("p", { class: "muted" }, "Loading…"));
  const progress = h("progress", { id: "import-progress", hidden: true });
  const progressText = h("span", { id: "import-status", role: "status" });
  const input = h("input", {
    id: "import-path",
    name: "path",
    type: "text",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "/media/cdrom or /home/me/pacs-export",
    "aria-label": "folder to import",
  });
  const button = h("button", { type: "submit", id: "import-button" }, "Import");
  const mine = generation;
  const form = h(
    "form",
    {
      class: "import",
      onsubmit: async (event) => {
        event.preventDefault();
        button.disabled = true;
        progress.hidden = false;
        progress.removeAttribute("value");
        progressText.textContent = "starting…";
        try {
          const job = await api("/api/import", { json: { path: input.value } });
          const end = await follow(job.id, (status) => {
            if (status.total) {
              progress.max = status.total;
              progress.value = status.done;
            }
            progressText.textContent = scanText(status);
          });
          if (end.state === "done") {
            progressText.textContent = importSummary(end.result);
            progressText.dataset.state = "done";
          } else {
            progressText.textContent = `import failed: ${end.error}`;
          }
          if (mine === generation) await refreshTable(tableBox);
        } catch (err) {
          progressText.textContent = `${err.code}: ${err.message}`;
        } finally {
          button.disabled = false;
          progress.hidden = true;
        }
      },
    },
    h("label", { for: "import-path" }, "Import a folder on this machine"),
    h("div", { class: "row" }, input, button),
    h("div", { class: "row" }, progress, progressText),
  );
  const search = h("input", {
    id: "series-filter",
    type: "search",
    placeholder: "filter: patient, study, series, modality…",
    "aria-label": "filter the table",
    oninput: () => {
      table.filter = search.value;
      if (table.rows.length) renderTable(tableBox);
    },
  });
  search.value = table.filter;
  put(main,
    h("section", { class: "card" }, form),
    h("section", {}, h("h1", {}, "Patients, studies and series"), search, tableBox),
  );
  refreshTable(tableBox).catch((err) => put(tableBox, failure(err)));
}

// ---------------------------------------------------------------- series page

function warningList(warnings) {
  if (!warnings.length) return null;
  return h(
    "ul",
    { class: "warnings" },
    warnings.map((w) =>
      h(
        "li",
        { class: `level-${w.level}` },
        h("code", {}, w.code),
        ` ${w.message}`,
        w.files ? h("span", { class: "muted" }, ` (${w.files} file${w.files === 1 ? "" : "s"})`) : "",
      ),
    ),
  );
}

function loadableCard(lo, chosen) {
  const shape = lo.shape.length ? lo.shape.join(" × ") : "–";
  const check = h("input", {
    type: "checkbox",
    class: "choose",
    checked: chosen.has(lo.id),
    disabled: !lo.viewable,
    "aria-label": `convert ${lo.name}`,
    onchange: () => (check.checked ? chosen.add(lo.id) : chosen.delete(lo.id)),
  });
  const actions = [];
  if (lo.viewable) actions.push(h("a", { class: "button", href: `#/view/${lo.id}` }, "View"));
  if (lo.kind === "localizer" && lo.geometry) {
    actions.push(h("a", { class: "button", href: `#/localizer/${lo.id}` }, "Localizer view"));
  }
  return h(
    "article",
    {
      class: `loadable kind-${lo.kind}${lo.selected ? " selected" : ""}`,
      dataset: { loadableId: lo.id, kind: lo.kind, selected: String(lo.selected) },
    },
    lo.viewable
      ? h("img", {
          class: "thumb",
          src: `/api/loadables/${lo.id}/thumbnail.png`,
          alt: `middle slice of ${lo.name}`,
          loading: "lazy",
        })
      : h("div", { class: "thumb none" }, "no pixels"),
    h(
      "div",
      { class: "facts" },
      h("h3", {}, lo.name),
      h(
        "p",
        {},
        h("span", { class: `badge kind` }, lo.kind),
        " ",
        h("span", { class: `badge ${lo.selected ? "yes" : "no"}` }, lo.selected ? "selected" : "not selected"),
        ` ${shape}`,
        lo.spacing ? ` · ${lo.spacing.map((v) => fmt(v, 3)).join(" × ")} mm` : "",
        ` · confidence ${fmt(lo.confidence)}`,
      ),
      h("p", { class: "reason" }, lo.reason),
      warningList(lo.warnings),
      h("div", { class: "actions" }, h("label", {}, check, " convert"), actions),
    ),
  );
}

function convertPanel(chosen) {
  const format = h(
    "select",
    { id: "convert-format", "aria-label": "format" },
    h("option", { value: "nii.gz" }, "NIfTI (.nii.gz)"),
    h("option", { value: "nii" }, "NIfTI (.nii)"),
    h("option", { value: "nrrd" }, "NRRD (.nrrd)"),
  );
  const progress = h("progress", { hidden: true, id: "convert-progress" });
  const status = h("span", { id: "convert-status", role: "status" });
  const results = h("div", { id: "convert-results" });
  const button = h(
    "button",
    {
      type: "button",
      id: "convert-button",
      onclick: async () => {
        if (!chosen.size) {
          status.textContent = "choose at least one loadable";
          return;
        }
        button.disabled = true;
        progress.hidden = false;
        put(results);
        try {
          const job = await api("/api/convert", {
            json: { loadables: [...chosen], format: format.value },
          });
          const end = await follow(job.id, (s) => {
            status.textContent = `${s.phase} ${s.total ? `${s.done} of ${s.total}` : ""}`;
            if (s.total) {
              progress.max = s.total;
              progress.value = s.done;
            }
          });
          if (end.state !== "done") {
            status.textContent = `conversion failed: ${end.error}`;
            return;
          }
          const { outputs, failures } = end.result;
          status.textContent = `wrote ${outputs.length} image(s)` +
            (failures.length ? `, ${failures.length} failed` : "");
          status.dataset.state = "done";
          const base = `/api/jobs/${encodeURIComponent(end.id)}`;
          put(results,
            h(
              "ul",
              { class: "outputs" },
              outputs.map((o) =>
                h(
                  "li",
                  {},
                  h("a", { href: `${base}/files/${o.image}`, download: o.file, class: "download" }, o.file),
                  " ",
                  h("a", { href: `${base}/files/${o.sidecar}`, download: "" }, "sidecar"),
                  h("span", { class: "muted" }, ` ${o.kind}: ${o.loadable}`),
                ),
              ),
              failures.map((f) =>
                h("li", { class: "error" }, h("code", {}, f.code), ` ${f.loadable}: ${f.hint}`),
              ),
            ),
            outputs.length
              ? h("a", { class: "button", href: `${base}/archive.zip`, download: "dicomsieve.zip" },
                  "Download all (zip)")
              : null,
          );
        } catch (err) {
          status.textContent = `${err.code}: ${err.message}`;
        } finally {
          button.disabled = false;
          progress.hidden = true;
        }
      },
    },
    "Convert chosen",
  );
  return h(
    "section",
    { class: "card convert" },
    h("h2", {}, "Convert and download"),
    h("div", { class: "row" }, format, button, progress, status),
    results,
  );
}

async function viewSeries(id) {
  setCrumbs(["Series", "#/"], [`series ${id}`, null]);
  const data = await api(`/api/series/${id}`);
  setCrumbs(["Series", "#/"], [data.series_description || `series ${id}`, null]);
  const chosen = new Set(data.loadables.filter((lo) => lo.selected).map((lo) => lo.id));
  const groups = KIND_GROUPS.map(([title, kinds]) => {
    const members = data.loadables.filter((lo) => kinds.includes(lo.kind));
    if (!members.length) return null;
    return h(
      "section",
      { class: "group", dataset: { group: kinds[0] } },
      h("h2", {}, `${title} (${members.length})`),
      members.map((lo) => loadableCard(lo, chosen)),
    );
  });
  put(main,
    h(
      "h1",
      {},
      `Series ${data.series_number ?? "?"} · ${data.series_description || "(no description)"} · ${data.modality || "?"}`,
    ),
    h("p", { class: "muted" }, `${data.study_description || "study"} · ${dicomDate(data.study_date)}`,
      data.left_out ? ` · ${data.left_out} duplicate file(s) left out` : ""),
    warningList(data.warnings),
    groups,
    convertPanel(chosen),
  );
}

// ---------------------------------------------------------------- viewer

function windowControls(info, onChange) {
  const state = { center: info.window.center, width: info.window.width };
  const select = h(
    "select",
    { id: "window-preset", "aria-label": "window preset" },
    info.presets.map((w, n) =>
      h("option", { value: String(n) }, `${w.name} (${fmt(w.center, 1)} / ${fmt(w.width, 1)})`),
    ),
    h("option", { value: "custom" }, "custom"),
  );
  const center = h("input", { type: "number", id: "window-center", step: "any", "aria-label": "window centre" });
  const width = h("input", { type: "number", id: "window-width", step: "any", min: "1", "aria-label": "window width" });
  const sync = () => {
    center.value = fmt(state.center, 2);
    width.value = fmt(state.width, 2);
  };
  select.addEventListener("change", () => {
    if (select.value === "custom") return;
    const w = info.presets[Number(select.value)];
    state.center = w.center;
    state.width = w.width;
    sync();
    onChange(state);
  });
  for (const input of [center, width]) {
    input.addEventListener("change", () => {
      const c = Number(center.value);
      const w = Number(width.value);
      if (!Number.isFinite(c) || !Number.isFinite(w) || w <= 0) return;
      state.center = c;
      state.width = w;
      select.value = "custom";
      onChange(state);
    });
  }
  const start = info.presets.findIndex(
    (w) => w.center === info.window.center && w.width === info.window.width,
  );
  select.value = start >= 0 ? String(start) : "custom";
  sync();
  const drag = (dx, dy) => {
    const step = Math.max(state.width / 256, 0.01);
    state.width = Math.max(1, state.width + dx * step * 2);
    state.center = state.center - dy * step * 2;
    select.value = "custom";
    sync();
    onChange(state);
  };
  const box = info.rgb
    ? h("span", { class: "muted" }, "colour image: no window")
    : h("span", { class: "row" }, h("label", {}, "Window ", select),
        h("label", {}, " centre ", center), h("label", {}, " width ", width));
  return { state, box, drag };
}

function planePanel(info, axis, title, view) {
  const count = info.planes[axis].count;
  const label = h("span", { class: "slice-label", dataset: { axis } });
  const slider = h("input", {
    type: "range",
    min: "0",
    max: String(count - 1),
    value: String(Math.floor(count / 2)),
    "aria-label": `${title}: position`,
  });
  const edges = {
    top: h("span", { class: "edge top" }),
    bottom: h("span", { class: "edge bottom" }),
    left: h("span", { class: "edge left" }),
    right: h("span", { class: "edge right" }),
  };
  const image = new PlaneImage(title, (_, headers) => {
    const right = headers.get("x-plane-right") || "";
    const down = headers.get("x-plane-down") || "";
    edges.right.textContent = right;
    edges.left.textContent = OPPOSITE[right] || "";
    edges.bottom.textContent = down;
    edges.top.textContent = OPPOSITE[down] || "";
  });
  image.img.dataset.axis = String(axis);
  const panel = {
    axis,
    count,
    get index() {
      return Number(slider.value);
    },
    set index(value) {
      slider.value = String(Math.max(0, Math.min(count - 1, value)));
      panel.update();
    },
    update() {
      label.textContent = `${title}: ${panel.index + 1} / ${count}`;
      const w = view.window.state;
      const params = { index: String(panel.index), t: String(view.t), ww: String(w.width) };
      const query = new URLSearchParams({
        axis: String(axis),
        index: params.index,
        t: params.t,
        size: "768",
      });
      if (!info.rgb) {
        query.set("wc", String(w.center));
        query.set("ww", String(w.width));
      }
      image.show(`/api/loadables/${info.id}/plane.png?${query}`, params);
    },
  };
  slider.addEventListener("input", () => panel.update());
  const frame = h("div", { class: "frame" }, image.img, Object.values(edges));
  frame.addEventListener(
    "wheel",
    (event) => {
      event.preventDefault();
      panel.index = panel.index + (event.deltaY > 0 ? 1 : -1);
    },
    { passive: false },
  );
  let last = null;
  frame.addEventListener("pointerdown", (event) => {
    if (info.rgb) return;
    last = [event.clientX, event.clientY];
    frame.setPointerCapture(event.pointerId);
  });
  frame.addEventListener("pointermove", (event) => {
    if (!last) return;
    const [x, y] = last;
    last = [event.clientX, event.clientY];
    view.window.drag(event.clientX - x, event.clientY - y);
  });
  frame.addEventListener("pointerup", () => (last = null));
  panel.element = h(
    "figure",
    { class: "panel", dataset: { axis } },
    frame,
    h("figcaption", {}, label, slider),
  );
  return panel;
}

async function viewVolume(id) {
  setCrumbs(["Series", "#/"], [`loadable ${id}`, null]);
  put(main, h("p", { class: "muted" }, "Loading the volume…"));
  const info = await api(`/api/loadables/${id}`);
  setCrumbs(
    ["Series", "#/"],
    [info.series_description || "series", `#/series/${info.series_id}`],
    [info.name, null],
  );
  const view = { t: 0, panels: [] };
  view.window = windowControls(info, () => view.panels.forEach((p) => p.update()));
  const titles = ["Reformat (fixed column)", "Reformat (fixed row)", "Slice"];
  const axes = info.planes[2].count > 1 ? [2, 0, 1] : [2];
  view.panels = axes.map((axis) => planePanel(info, axis, titles[axis], view));
  let timeBox = null;
  if (info.time_points > 1) {
    const tLabel = h("span", { id: "time-label" }, `time point 1 / ${info.time_points}`);
    const tSlider = h("input", {
      type: "range",
      id: "time-slider",
      min: "0",
      max: String(info.time_points - 1),
      value: "0",
      "aria-label": "time point",
    });
    tSlider.addEventListener("input", () => {
      view.t = Number(tSlider.value);
      tLabel.textContent = `time point ${view.t + 1} / ${info.time_points}`;
      view.panels.forEach((p) => p.update());
    });
    timeBox = h("label", { class: "row" }, tLabel, tSlider);
  }
  document.onkeydown = (event) => {
    const panel = view.panels[0];
    if (!panel || event.target instanceof HTMLInputElement) return;
    if (["ArrowUp", "PageUp"].includes(event.key)) panel.index = panel.index - 1;
    if (["ArrowDown", "PageDown"].includes(event.key)) panel.index = panel.index + 1;
  };
  put(main,
    h("h1", {}, info.name, " ", h("span", { class: "badge kind" }, info.kind)),
    h(
      "p",
      { class: "muted" },
      `${info.shape.join(" × ")}`,
      info.spacing ? ` · ${info.spacing.map((v) => fmt(v, 3)).join(" × ")} mm` : "",
      info.invert ? " · MONOCHROME1, shown inverted" : "",
      " · scroll over an image to move through it; drag to change the window",
    ),
    h("div", { class: "card controls" }, view.window.box, timeBox),
    h(
      "div",
      { class: view.panels.length > 1 ? "panels" : "panels single", id: "viewer" },
      view.panels.map((p) => p.element),
    ),
  );
  view.panels.forEach((p) => p.update());
}

// ---------------------------------------------------------------- localizer view

async function viewLocalizer(id, volumeId = null, imageIndex = null) {
  setCrumbs(["Series", "#/"], [`localizer ${id}`, null]);
  const query = new URLSearchParams();
  if (volumeId !== null) query.set("volume", String(volumeId));
  if (imageIndex !== null) query.set("image", String(imageIndex));
  const data = await api(`/api/loadables/${id}/reference-lines?${query}`);
  const loc = data.localizer;
  const info = await api(`/api/loadables/${id}`);
  setCrumbs(
    ["Series", "#/"],
    [info.series_description || "series", `#/series/${info.series_id}`],
    [`${loc.name} (localizer)`, null],
  );
  const overlay = svg("svg", {
    class: "overlay",
    viewBox: `-0.5 -0.5 ${loc.columns} ${loc.rows}`,
    preserveAspectRatio: "none",
    "aria-label": "reference lines",
  });
  const lineEls = data.lines.map((line) => {
    const el = svg("line", {
      class: "ref-line",
      x1: line.start[0],
      y1: line.start[1],
      x2: line.end[0],
      y2: line.end[1],
      "vector-effect": "non-scaling-stroke",
      "data-slice": line.slice,
    });
    overlay.append(el);
    return el;
  });
  const scout = new PlaneImage(`localizer ${loc.name}`, null);
  scout.img.id = "localizer-image";
  scout.show(`/api/loadables/${id}/plane.png?axis=2&index=${loc.image}&size=768`, {
    index: String(loc.image),
  });
  const side = [];
  let pick = null;
  if (data.volume) {
    const vol = data.volume;
    const sliceImage = new PlaneImage(`slice of ${vol.name}`, null);
    sliceImage.img.id = "volume-slice";
    const label = h("span", { id: "volume-slice-label" });
    const slider = h("input", {
      type: "range",
      min: "0",
      max: String(vol.slices - 1),
      value: String(Math.floor(vol.slices / 2)),
      "aria-label": "slice of the volume",
    });
    pick = (k) => {
      slider.value = String(k);
      label.textContent = `slice ${k + 1} / ${vol.slices}`;
      for (const el of lineEls) {
        el.classList.toggle("current", Number(el.dataset.slice) === k);
      }
      sliceImage.show(`/api/loadables/${vol.id}/plane.png?axis=2&index=${k}&size=512`, {
        index: String(k),
      });
    };
    slider.addEventListener("input", () => pick(Number(slider.value)));
    for (const el of lineEls) {
      el.addEventListener("click", () => pick(Number(el.dataset.slice)));
    }
    const choose = h(
      "select",
      { id: "volume-choice", "aria-label": "volume whose slices are drawn" },
      data.candidates.map((c) =>
        h(
          "option",
          { value: String(c.id), selected: c.id === vol.id },
          `${c.series_number ?? "?"} ${c.series_description || ""} · ${c.name} (${c.kind})`,
        ),
      ),
    );
    choose.addEventListener("change", () =>
      viewLocalizer(id, Number(choose.value), loc.image).catch(showFailure),
    );
    side.push(
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Slices drawn"),
        h("label", {}, "Volume ", choose),
        h(
          "p",
          { class: vol.same_frame_of_reference ? "muted" : "warn" },
          vol.same_frame_of_reference
            ? `${data.lines.length} of ${vol.slices} slices cross this image; same frame of reference`
            : `${data.lines.length} of ${vol.slices} slices cross this image; other frame of ` +
              "reference: the lines assume the patient did not move",
        ),
        h("figure", { class: "panel" }, h("div", { class: "frame" }, sliceImage.img),
          h("figcaption", {}, label, slider)),
      ),
    );
  } else {
    side.push(h("p", { class: "warn" }, "No volume in this study to draw on this localizer."));
  }
  let imageControl = null;
  if (loc.images > 1) {
    const imageSlider = h("input", {
      type: "range",
      min: "0",
      max: String(loc.images - 1),
      value: String(loc.image),
      "aria-label": "image of the localizer",
    });
    imageSlider.addEventListener("change", () =>
      viewLocalizer(id, data.volume ? data.volume.id : null, Number(imageSlider.value)).catch(
        showFailure,
      ),
    );
    imageControl = h("label", { class: "row" }, `image ${loc.image + 1} / ${loc.images} `, imageSlider);
  }
  put(main,
    h("h1", {}, `${loc.name} `, h("span", { class: "badge kind" }, "localizer")),
    h(
      "div",
      { class: "localizer-layout" },
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Localizer with the slice planes"),
        imageControl,
        h("div", { class: "frame scout", id: "localizer" }, scout.img, overlay),
        h("p", { class: "muted" }, "Click a line to show that slice."),
      ),
      side,
    ),
  );
  if (pick && data.volume) pick(Math.floor(data.volume.slices / 2));
}

// ---------------------------------------------------------------- routing

function showFailure(err) {
  put(main, failure(err));
}

async function route() {
  generation += 1;
  document.onkeydown = null;
  say("");
  const hash = location.hash || "#/";
  const match = hash.match(/^#\/(series|view|localizer)\/(\d+)$/);
  try {
    if (!match) viewHome();
    else if (match[1] === "series") await viewSeries(match[2]);
    else if (match[1] === "view") await viewVolume(match[2]);
    else await viewLocalizer(match[2]);
  } catch (err) {
    showFailure(err);
  }
}

window.addEventListener("hashchange", route);
route();
