// The results site's script (a classic script: file:// pages may not load modules). It makes the
// tables sortable and filterable, renders every plot slot with vega-embed, and runs the compare
// view. Written by `deno task site` into assets/; the data rides in the pages (data/runs.js).
"use strict";

/** Sorts a table by column `col` (numbers numerically, then text), toggling the direction. */
function sortTable(t, col) {
  const body = t.tBodies[0];
  const th = t.tHead.rows[0].cells[col];
  const dir = th.dataset.dir === "asc" ? "desc" : "asc";
  for (const h of t.tHead.rows[0].cells) delete h.dataset.dir;
  th.dataset.dir = dir;
  const key = (tr) => {
    const c = tr.cells[col];
    const v = c.dataset.sort ?? c.textContent;
    return v !== "" && !isNaN(Number(v)) ? Number(v) : v;
  };
  const rows = [...body.rows];
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    const nx = typeof x === "number", ny = typeof y === "number";
    const c = nx && ny ? x - y : nx ? -1 : ny ? 1 : String(x).localeCompare(String(y));
    return dir === "asc" ? c : -c;
  });
  for (const r of rows) body.appendChild(r);
}

/** Shows only the rows in which every word of the filter occurs. */
function filterTable(t, text, count) {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  let shown = 0;
  for (const tr of t.tBodies[0].rows) {
    const row = tr.textContent.toLowerCase();
    const ok = words.every((w) => row.includes(w));
    tr.hidden = !ok;
    if (ok) shown++;
  }
  if (count) count.textContent = `${shown} of ${t.tBodies[0].rows.length} rows`;
}

/** Clicking a header of `t` sorts by that column. */
function makeSortable(t) {
  [...t.tHead.rows[0].cells].forEach((th, i) => {
    th.title = "click to sort";
    th.addEventListener("click", () => sortTable(t, i));
  });
}

function setUpTables() {
  for (const t of document.querySelectorAll("table.sortable")) makeSortable(t);
  for (const input of document.querySelectorAll("input.filter")) {
    const t = document.getElementById(input.dataset.table);
    const count = document.querySelector(`span.count[data-table="${input.dataset.table}"]`);
    input.addEventListener("input", () => filterTable(t, input.value, count));
    filterTable(t, "", count);
  }
  // the index: tick two runs, then compare them
  const button = document.getElementById("compare-picked");
  if (!button) return;
  const picked = [];
  for (const td of document.querySelectorAll("td.pick")) {
    const box = document.createElement("input");
    box.type = "checkbox";
    box.addEventListener("change", () => {
      const key = td.dataset.sort;
      if (box.checked) picked.push(key);
      else picked.splice(picked.indexOf(key), 1);
      button.disabled = picked.length !== 2;
    });
    td.appendChild(box);
  }
  button.addEventListener("click", () => {
    location.href = `compare.html#a=${encodeURIComponent(picked[0])}&b=${
      encodeURIComponent(picked[1])
    }`;
  });
}

const EMBED_OPTIONS = {
  renderer: "svg",
  actions: { export: true, source: false, compiled: false, editor: false },
};

/** Renders one plot slot; marks it data-rendered when done. */
async function renderPlot(div, spec) {
  try {
    await vegaEmbed(div, spec, EMBED_OPTIONS);
    div.dataset.rendered = "1";
  } catch (e) {
    console.error(`plot ${div.dataset.spec ?? div.id}: ${e.message}`);
  }
}

function renderPlots() {
  const slots = [...document.querySelectorAll("div.vl[data-spec]")];
  return Promise.all(
    slots.map((div) =>
      renderPlot(div, JSON.parse(document.getElementById(div.dataset.spec).textContent))
    ),
  );
}

// ------------------------------------------------------------------ compare view

function escapeHtml(s) {
  return String(s).replace(
    /[&<>"]/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c],
  );
}

function hashParams() {
  return new URLSearchParams(location.hash.slice(1));
}

/** The run a compare choice names: a run key, or "commit:<sha>:<profile>" for the latest complete run there. */
function runOf(site, exp, choice) {
  if (!choice) return null;
  if (choice.startsWith("commit:")) {
    const [, sha, profile] = choice.split(":");
    return site.runs.find((r) =>
      r.experiment === exp && r.commit === sha && r.profile === profile && r.status === "complete"
    ) ?? null;
  }
  return site.runs.find((r) => r.key === choice) ?? null;
}

function fillRunSelect(select, site, exp, chosen) {
  const runs = site.runs.filter((r) => r.experiment === exp && r.status === "complete");
  const opt = (value, text) =>
    `<option value="${escapeHtml(value)}"${value === chosen ? " selected" : ""}>${
      escapeHtml(text)
    }</option>`;
  const byRun = runs.map((r) =>
    opt(r.key, `${r.commit.slice(0, 7)} ${r.runId} (${r.profile}, seed ${r.seed})`)
  );
  const seen = new Set();
  const byCommit = [];
  for (const c of [...site.commits].reverse()) {
    for (const r of runs.filter((x) => x.commit === c)) {
      const k = `commit:${c}:${r.profile}`;
      if (seen.has(k)) continue;
      seen.add(k);
      byCommit.push(opt(k, `commit ${c.slice(0, 7)}, latest ${r.profile} run`));
    }
  }
  select.innerHTML = `<option value="">(choose)</option><optgroup label="runs">${
    byRun.join("")
  }</optgroup><optgroup label="latest complete run at a commit">${byCommit.join("")}</optgroup>`;
}

function showComparison(site, a, b, pct, out) {
  const c = joinSummaries(a.summary, b.summary, QGT_COMPARED);
  const wide = wideRows(c.rows);
  const reg = regressions(c.rows, pct);
  const regressed = new Set(reg.map((r) => r.slice(0, r.indexOf(":"))));
  const notes = runDifferences(a.record, b.record);
  const cols = [
    "variant",
    "accuracy A %",
    "accuracy B %",
    "change (points)",
    "bytes A",
    "bytes B",
    "change (bytes)",
  ];
  const rows = wide.map((w) =>
    `<tr${regressed.has(w.variant) ? ' class="regression"' : ""}>${
      cols.map((k) => `<td data-sort="${escapeHtml(w[k] ?? "")}">${escapeHtml(w[k] ?? "")}</td>`)
        .join("")
    }<td>${regressed.has(w.variant) ? "regression" : ""}</td></tr>`
  ).join("");
  const link = (r) => `<a href="${escapeHtml(r.page)}">${escapeHtml(r.runId)}</a>`;
  out.innerHTML =
    `<p>A: ${link(a)} at ${a.commit.slice(0, 7)}; B: ${link(b)} at ${b.commit.slice(0, 7)}.</p>` +
    (notes.length
      ? `<ul class="warnings">${notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")}</ul>`
      : "") +
    `<table id="compare-table" class="sortable"><thead><tr>${
      cols.map((k) => `<th>${escapeHtml(k)}</th>`).join("")
    }<th>flag</th></tr></thead><tbody>${rows}</tbody></table>` +
    `<p id="compare-verdict">${
      reg.length
        ? `${reg.length} regression(s) beyond ${pct}: ${reg.map(escapeHtml).join("; ")}`
        : `no regression beyond ${pct}`
    }</p>` +
    (c.onlyA.length || c.onlyB.length
      ? `<p>Only in A: ${escapeHtml(c.onlyA.join(", ") || "-")}. Only in B: ${
        escapeHtml(c.onlyB.join(", ") || "-")
      }.</p>`
      : "") +
    `<div class="vl" id="compare-plot"></div>`;
  const bars = wide.filter((w) => typeof w["change (points)"] === "number").map((w) => ({
    variant: w.variant,
    change: w["change (points)"],
  }));
  const plotDiv = document.getElementById("compare-plot");
  if (bars.length) renderPlot(plotDiv, changeSpec(bars, site.colors));
  makeSortable(document.getElementById("compare-table"));
}

function setUpCompare() {
  const site = globalThis.QGT_SITE;
  const form = document.getElementById("compare-form");
  if (!site || !form) return;
  const expSel = document.getElementById("cmp-exp");
  const aSel = document.getElementById("cmp-a"), bSel = document.getElementById("cmp-b");
  const pctIn = document.getElementById("cmp-pct");
  const out = document.getElementById("compare-out");
  const experiments = [...new Set(site.runs.map((r) => r.experiment))].sort();
  const p = hashParams();
  const first = site.runs.find((r) => r.key === p.get("a") || r.key === p.get("b"));
  const exp0 = p.get("exp") ?? first?.experiment ?? experiments[0];
  expSel.innerHTML = experiments.map((e) =>
    `<option${e === exp0 ? " selected" : ""}>${escapeHtml(e)}</option>`
  ).join("");
  if (p.get("pct")) pctIn.value = p.get("pct");
  const update = (fromHash) => {
    const q = hashParams();
    const exp = expSel.value;
    if (fromHash) {
      fillRunSelect(aSel, site, exp, q.get("a") ?? "");
      fillRunSelect(bSel, site, exp, q.get("b") ?? "");
    }
    const a = runOf(site, exp, aSel.value), b = runOf(site, exp, bSel.value);
    const pct = Number(pctIn.value);
    if (!a || !b) {
      out.innerHTML = "<p>Choose two runs.</p>";
      return;
    }
    const h = new URLSearchParams({ exp, a: aSel.value, b: bSel.value, pct: String(pct) });
    history.replaceState(null, "", `#${h}`);
    showComparison(site, a, b, pct >= 0 ? pct : 1, out);
  };
  expSel.addEventListener("change", () => {
    fillRunSelect(aSel, site, expSel.value, "");
    fillRunSelect(bSel, site, expSel.value, "");
    update(false);
  });
  for (const el of [aSel, bSel, pctIn]) el.addEventListener("change", () => update(false));
  update(true);
}

document.addEventListener("DOMContentLoaded", () => {
  setUpTables();
  setUpCompare();
  renderPlots().then(() => document.body.dataset.plotsDone = "1");
});
