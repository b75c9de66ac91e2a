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

// Sets up a panel that only the desktop app shows, once the page is loaded: `setup` gets
// Tauri's global API, app-desktop's command call and a lookup by id.
function desktopPanel(setup) {
  document.addEventListener("DOMContentLoaded", async () => {
    const tauri = window.__TAURI__;
    if (!(tauri && tauri.core)) {
      return;
    }
    await setup({ tauri, invoke: tauri.core.invoke, $: (id) => document.getElementById(id) });
  });
}

// The Updates panel, in the desktop app only: settings, checks on demand, release notes,
// download progress and the install, all through app-desktop's commands.
desktopPanel(async ({ tauri, invoke, $ }) => {
  const message = (text) => { $("update-message").textContent = text; };
  const showOffer = (offer) => {
    $("update-offer").hidden = !offer;
    if (offer) {
      $("update-title").textContent = `Version ${offer.version} is available (you have ${offer.current_version})`;
      $("update-notes").textContent = offer.notes || "No release notes.";
    }
  };
  const readSettings = () => ({
    channel: $("update-channel").value,
    auto_check: $("update-auto-check").checked,
    auto_install: $("update-auto-install").checked,
  });

  const status = await invoke("update_status");
  $("updates").hidden = false;
  $("update-channel").value = status.settings.channel;
  $("update-auto-check").checked = status.settings.auto_check;
  $("update-auto-install").checked = status.settings.auto_install;
  $("update-install-id").textContent = status.install_id;
  if (status.disabled) {
    $("update-disabled").hidden = false;
    $("update-disabled").textContent = `Updates are off: ${status.disabled}.`;
    $("update-check").disabled = true;
  }
  showOffer(status.available);

  for (const id of ["update-channel", "update-auto-check", "update-auto-install"]) {
    $(id).addEventListener("change", async () => {
      try {
        await invoke("save_settings", { settings: readSettings() });
        message("Saved.");
      } catch (error) {
        message(`Not saved: ${error}`);
      }
    });
  }
  $("update-reset-id").addEventListener("click", async () => {
    $("update-install-id").textContent = await invoke("reset_install_id");
  });
  $("update-check").addEventListener("click", async () => {
    message("Checking…");
    try {
      const offer = await invoke("check_for_update");
      showOffer(offer);
      message(offer ? "" : "You have the latest version.");
    } catch (error) {
      message(String(error));
    }
  });
  $("update-install").addEventListener("click", async () => {
    $("update-install").disabled = true;
    $("update-progress").hidden = false;
    message("Downloading…");
    try {
      await invoke("install_update");
    } catch (error) {
      message(String(error));
      $("update-install").disabled = false;
    }
  });
  await tauri.event.listen("update-available", (event) => showOffer(event.payload));
  await tauri.event.listen("update-progress", (event) => {
    const { downloaded, total } = event.payload;
    const bar = $("update-progress");
    if (total) {
      bar.max = total;
      bar.value = downloaded;
    } else {
      bar.removeAttribute("value");
    }
  });
});

// Usage analytics in the browser: one `app_started` event per page load, with a random id for
// this page's session and no cookie or stored id, and nothing at all when the browser asks
// not to be tracked (Do Not Track or Global Privacy Control). The desktop app sends its own
// events, and only after its user agreed.
function browserOptedOut() {
  return navigator.doNotTrack === "1" || window.doNotTrack === "1" || navigator.globalPrivacyControl === true;
}

function randomHex(bytes) {
  const values = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(values, (value) => value.toString(16).padStart(2, "0")).join("");
}

document.addEventListener("DOMContentLoaded", async () => {
  if ((window.__TAURI__ && window.__TAURI__.core) || browserOptedOut()) {
    return;
  }
  try {
    const info = await (await fetch("/api/info", { headers: { Accept: "application/json" } })).json();
    await fetch("/api/events", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      keepalive: true,
      body: JSON.stringify({
        app: "app-web",
        session_id: randomHex(16),
        app_version: info.version,
        os: "web",
        locale: (navigator.language || "").slice(0, 35),
        events: [{ name: "app_started" }],
      }),
    });
  } catch (error) {
    // Analytics never gets in the way of the page.
  }
});

// The Privacy panel, in the desktop app only: the consent question (asked until answered),
// the answer kept by app-desktop, and the crash reports waiting to be sent, each deletable.
desktopPanel(async ({ invoke, $ }) => {
  const show = async () => {
    const status = await invoke("privacy_status");
    $("privacy").hidden = false;
    $("consent-question").hidden = status.consent.asked;
    $("consent-crashes").checked = status.consent.crash_reports;
    $("consent-analytics").checked = status.consent.analytics;
    const list = $("crash-list");
    list.replaceChildren();
    $("crash-none").hidden = status.crash_reports.length > 0;
    for (const report of status.crash_reports) {
      const item = document.createElement("li");
      const what = report.panic_message ? `: ${report.panic_message}` : "";
      item.textContent = `${report.crashed_at || "unknown time"}, version ${report.version}${what} `;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Delete";
      remove.addEventListener("click", async () => {
        await invoke("delete_crash_report", { id: report.id });
        await show();
      });
      item.appendChild(remove);
      list.appendChild(item);
    }
  };
  $("consent-save").addEventListener("click", async () => {
    try {
      await invoke("save_consent", {
        crashReports: $("consent-crashes").checked,
        analytics: $("consent-analytics").checked,
      });
      $("privacy-message").textContent = "Saved.";
      await show();
    } catch (error) {
      $("privacy-message").textContent = `Not saved: ${error}`;
    }
  });
  $("update-check").addEventListener("click", () => {
    invoke("track_feature", { feature: "check_for_update" }).catch(() => {});
  });
  await show();
});
