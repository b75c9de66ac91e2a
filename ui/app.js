// Fills in the mode and version, and puts the version in the title: inside the desktop app
// Tauri's global API answers, in a browser app-web's /api/info does.
"use strict";

async function describeRuntime() {
  const tauri = window.__TAURI__;
  if (tauri && tauri.app) {
    return { mode: "desktop", version: await tauri.app.getVersion() };
  }
  const response = await fetch("/api/info", { headers: { Accept: "application/json" } });
  if (!response.ok) {
    throw new Error(`/api/info answered ${response.status}`);
  }
  const info = await response.json();
  return { mode: "web", version: info.version };
}

document.addEventListener("DOMContentLoaded", async () => {
  const mode = document.getElementById("mode");
  const version = document.getElementById("version");
  try {
    const runtime = await describeRuntime();
    mode.textContent = runtime.mode;
    version.textContent = runtime.version;
    const title = `App ${runtime.version}`;
    document.title = title;
    if (runtime.mode === "desktop") {
      await window.__TAURI__.window.getCurrentWindow().setTitle(title);
    }
  } catch (error) {
    mode.textContent = "unknown";
    version.textContent = `unavailable (${error.message})`;
  }
});
