//! The UI under the shipped Content-Security-Policy, in a real browser: Debian's Chromium,
//! headless, loads the page through the project's nginx in front of app-web and must run
//! app.js to the end (the version fetched from /api/info lands in the page and the title)
//! without a single CSP report. A control page with inline script and style, served by the
//! same nginx under the same headers, must be refused, so a browser that reported nothing
//! could not pass. What the page shows is checked too: a probe page served beside it loads the
//! real page (its HTML from app-web, its stylesheet and its script) and reads the computed
//! style of the desktop-only panels, which the web page must not show.
//!
//! Chromium resolves only app.test (to 127.0.0.1) and nothing else, uses no proxy and trusts
//! only the test's self-signed certificate, so it sends no traffic off loopback.

use e2e as support;

use std::process::Command;

use support::RunningBinary;
use support::chromium::{self, Visit};
use support::proxy::{Proxy, SERVER_NAME};

fn visit(proxy: &Proxy, path: &str) -> Visit {
    chromium::visit(
        Command::new("chromium"),
        &proxy.url(path),
        SERVER_NAME,
        "127.0.0.1",
        &chromium::spki_hash(&proxy.certificate()),
    )
}

#[test]
fn the_ui_runs_under_the_content_security_policy_in_a_browser() {
    let app = RunningBinary::start(&[]);
    let control = tempfile::Builder::new()
        .prefix("csp-control-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(
        control.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        control.path().join("index.html"),
        "<!doctype html><html><head><title>control</title>\
         <style>body { color: red }</style></head>\
         <body><p id=\"ran\">no</p>\
         <script>document.getElementById('ran').textContent = 'yes';</script>\
         </body></html>\n",
    )
    .unwrap();
    // The probe: the page as app-web serves it, with its stylesheet and its script run as a
    // browser runs them, then each desktop-only panel's computed display and height.
    std::fs::write(
        control.path().join("probe.html"),
        "<!doctype html><html><head><title>probe</title>\
         <script src=\"/csp-control/probe.js\" defer></script></head><body></body></html>\n",
    )
    .unwrap();
    std::fs::write(
        control.path().join("probe.js"),
        r#""use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const page = new DOMParser().parseFromString(await (await fetch("/")).text(), "text/html");
  const loads = [];
  for (const link of page.head.querySelectorAll("link[rel=stylesheet]")) {
    const sheet = document.createElement("link");
    sheet.rel = "stylesheet";
    sheet.href = new URL(link.getAttribute("href"), location.origin + "/").href;
    loads.push(new Promise((done) => { sheet.onload = done; sheet.onerror = done; }));
    document.head.append(sheet);
  }
  document.body.replaceWith(document.adoptNode(page.body));
  for (const script of page.head.querySelectorAll("script[src]")) {
    const copy = document.createElement("script");
    copy.src = new URL(script.getAttribute("src"), location.origin + "/").href;
    loads.push(new Promise((done) => { copy.onload = done; copy.onerror = done; }));
    document.head.append(copy);
  }
  await Promise.all(loads);
  document.dispatchEvent(new Event("DOMContentLoaded"));
  await new Promise((done) => setTimeout(done, 1000));
  const seen = ["updates", "privacy", "version"].map((id) => {
    const element = document.getElementById(id);
    return `${id}=${getComputedStyle(element).display}/${element.offsetHeight}`;
  });
  const out = document.createElement("p");
  out.id = "probe";
  out.textContent = seen.join(" ");
  document.body.append(out);
}, { once: true });
"#,
    )
    .unwrap();
    let control_location = format!(
        "        location /csp-control/ {{\n\
         \x20           include snippets/security-headers.conf;\n\
         \x20           alias {}/;\n\
         \x20       }}\n",
        control.path().display()
    );
    let proxy = Proxy::start_for(app.address, SERVER_NAME, ("20r/s", 40), &control_location);

    let ui = visit(&proxy, "/");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        ui.dom.contains(&format!("<title>App {version}</title>")),
        "app.js set the title from /api/info:\n{}\n{}",
        ui.dom,
        ui.log
    );
    assert!(
        ui.dom
            .contains(&format!("<dd id=\"version\">{version}</dd>"))
            && ui.dom.contains("<dd id=\"mode\">web</dd>"),
        "app.js filled in the mode and version:\n{}",
        ui.dom
    );
    assert_eq!(
        ui.csp_reports(),
        Vec::<&str>::new(),
        "the UI loads without a CSP report"
    );

    // In a browser the desktop-only panels are not shown: hidden, they take no room.
    let probe = visit(&proxy, "/csp-control/probe.html");
    let seen = probe
        .dom
        .split("<p id=\"probe\">")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("the probe did not run:\n{}\n{}", probe.dom, probe.log));
    assert!(
        seen.contains("updates=none/0") && seen.contains("privacy=none/0"),
        "the web page shows the desktop-only panels: {seen}"
    );
    assert!(
        !seen.contains("version=none"),
        "the probe sees the page itself: {seen}"
    );
    assert_eq!(probe.csp_reports(), Vec::<&str>::new(), "{}", probe.log);

    let refused = visit(&proxy, "/csp-control/");
    assert!(
        refused.dom.contains("<p id=\"ran\">no</p>"),
        "the control page's inline script was blocked:\n{}",
        refused.dom
    );
    let reports = refused.csp_reports();
    assert!(
        reports.iter().any(|line| line.contains("script"))
            && reports.iter().any(|line| line.contains("style")),
        "Chromium reported both the inline script and the inline style:\n{}",
        refused.log
    );
}
