// The crash reports page: groups, their reports and each report's symbolicated stack, read
// from app-web's admin API with the token typed into the page.
"use strict";

const $ = (id) => document.getElementById(id);

async function admin(path) {
  const token = sessionStorage.getItem("admin-token") || "";
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token}`, Accept: "application/json" } });
  if (!response.ok) {
    throw new Error(`${path} answered ${response.status}`);
  }
  return response.json();
}

function row(cells, onClick) {
  const tr = document.createElement("tr");
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
  }
  if (onClick) {
    tr.classList.add("clickable");
    tr.addEventListener("click", onClick);
  }
  return tr;
}

const counts = (object) => Object.entries(object || {}).map(([key, n]) => `${key}: ${n}`).join(", ");

async function showReport(id) {
  const report = await admin(`/api/admin/crashes/reports/${encodeURIComponent(id)}`);
  $("report-section").hidden = false;
  $("report-title").textContent = `Report ${report.id} (${report.version}, ${report.os}-${report.arch})`;
  $("report-reason").textContent = [report.crash_reason, report.crash_address, report.panic_message, report.error]
    .filter(Boolean).join(" · ");
  const frames = $("frames");
  frames.replaceChildren();
  for (const frame of report.stack || []) {
    const li = document.createElement("li");
    const where = frame.file ? ` (${frame.file}${frame.line ? `:${frame.line}` : ""})` : "";
    li.textContent = `${frame.function || `${frame.module || "?"}+${frame.offset}`}${where}${frame.inlined ? " [inlined]" : ""}`;
    frames.appendChild(li);
  }
}

async function showGroup(group) {
  const answer = await admin(`/api/admin/crashes/groups/${encodeURIComponent(group.group_id)}`);
  $("group-section").hidden = false;
  $("group-title").textContent = group.signature;
  const body = $("reports");
  body.replaceChildren();
  for (const report of answer.reports) {
    body.appendChild(row([report.received_at, report.version, `${report.os}-${report.arch}`, report.panic_message || ""],
      () => showReport(report.id)));
  }
}

async function load() {
  const [versions, groups] = await Promise.all([
    admin("/api/admin/crashes/versions"),
    admin("/api/admin/crashes/groups"),
  ]);
  $("versions-section").hidden = false;
  $("versions").replaceChildren(...versions.map((v) => row([
    v.version, v.sessions, v.crashed_sessions, v.crash_reports,
    v.crash_free_rate === null ? "–" : `${(v.crash_free_rate * 100).toFixed(2)} %`,
  ])));
  $("groups-section").hidden = false;
  $("groups").replaceChildren(...groups.map((g) => row([
    g.signature, g.reports, counts(g.versions), counts(g.platforms), g.first_seen, g.last_seen,
  ], () => showGroup(g))));
}

document.addEventListener("DOMContentLoaded", () => {
  $("token").value = sessionStorage.getItem("admin-token") || "";
  $("token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem("admin-token", $("token").value.trim());
    $("crash-message").textContent = "Loading…";
    try {
      await load();
      $("crash-message").textContent = "";
    } catch (error) {
      $("crash-message").textContent = String(error.message || error);
    }
  });
});
