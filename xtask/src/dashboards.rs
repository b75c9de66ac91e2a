//! `cargo xtask dashboards [--check]`: the Grafana dashboards in docker/grafana/dashboards,
//! written from the definitions below so that every panel has the same data sources, units
//! and layout rules. `--check` fails when a committed file differs from what would be
//! written; the tidy tests run it, and e2e/tests/e2e/monitoring.rs checks that every metric
//! the panels query is exported.

use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

use crate::{flags, path, step};

/// The data source uids docker/grafana/provisioning/datasources provisions.
const PROMETHEUS: &str = "prometheus";
const LOKI: &str = "loki";

/// Grid width Grafana lays panels out on.
const GRID_WIDTH: u32 = 24;

#[derive(Clone, Copy)]
enum Kind {
    /// One number (the last value), coloured by thresholds when it has any.
    Stat,
    /// Lines over time.
    TimeSeries,
    /// Log lines from Loki.
    Logs,
}

struct Panel {
    title: &'static str,
    kind: Kind,
    /// Grafana's unit id (`reqps`, `s`, `bytes`, `percentunit`, `short`, ...).
    unit: &'static str,
    /// Grid columns out of 24; rows fill left to right.
    width: u32,
    /// Queries and their legends: PromQL, or LogQL for a logs panel.
    queries: &'static [(&'static str, &'static str)],
    description: &'static str,
}

struct Dashboard {
    file: &'static str,
    uid: &'static str,
    title: &'static str,
    panels: &'static [Panel],
}

const fn stat(
    title: &'static str,
    unit: &'static str,
    query: &'static [(&'static str, &'static str)],
    description: &'static str,
) -> Panel {
    Panel {
        title,
        kind: Kind::Stat,
        unit,
        width: 6,
        queries: query,
        description,
    }
}

const fn graph(
    title: &'static str,
    unit: &'static str,
    width: u32,
    queries: &'static [(&'static str, &'static str)],
    description: &'static str,
) -> Panel {
    Panel {
        title,
        kind: Kind::TimeSeries,
        unit,
        width,
        queries,
        description,
    }
}

/// A full-width panel of log lines from Loki.
const fn logs(
    title: &'static str,
    query: &'static [(&'static str, &'static str)],
    description: &'static str,
) -> Panel {
    Panel {
        title,
        kind: Kind::Logs,
        unit: "none",
        width: GRID_WIDTH,
        queries: query,
        description,
    }
}

const DASHBOARDS: &[Dashboard] = &[
    Dashboard {
        file: "service-overview.json",
        uid: "app-service-overview",
        title: "App: service overview",
        panels: &[
            stat(
                "Requests",
                "reqps",
                &[("sum(rate(app_web_http_requests_total[5m]))", "")],
                "Requests app-web answered per second, over 5 minutes.",
            ),
            stat(
                "5xx ratio",
                "percentunit",
                &[(
                    "sum(rate(app_web_http_requests_total{status=~\"5..\"}[5m])) / sum(rate(app_web_http_requests_total[5m]))",
                    "",
                )],
                "Share of answers that were server errors; the HighErrorRatio alert watches it.",
            ),
            stat(
                "p99 latency",
                "s",
                &[(
                    "histogram_quantile(0.99, sum by (le) (rate(app_web_http_request_duration_seconds_bucket[5m])))",
                    "",
                )],
                "How long the slowest answers take; the LatencyObjectiveMissed alert holds it to the objective.",
            ),
            stat(
                "Running version",
                "none",
                &[(
                    "count by (version, commit) (app_web_build_info)",
                    "{{version}} ({{commit}})",
                )],
                "The versions app-web replicas run, and how many run each.",
            ),
            graph(
                "Requests by route",
                "reqps",
                12,
                &[(
                    "sum by (route) (rate(app_web_http_requests_total[5m]))",
                    "{{route}}",
                )],
                "Per route template, never per raw path.",
            ),
            graph(
                "Errors by status",
                "reqps",
                12,
                &[(
                    "sum by (status) (rate(app_web_http_requests_total{status=~\"[45]..\"}[5m]))",
                    "{{status}}",
                )],
                "4xx are the clients' mistakes (and rate limits); 5xx are ours.",
            ),
            graph(
                "Latency by route",
                "s",
                12,
                &[
                    (
                        "histogram_quantile(0.5, sum by (le, route) (rate(app_web_http_request_duration_seconds_bucket[5m])))",
                        "p50 {{route}}",
                    ),
                    (
                        "histogram_quantile(0.99, sum by (le, route) (rate(app_web_http_request_duration_seconds_bucket[5m])))",
                        "p99 {{route}}",
                    ),
                ],
                "Median and 99th percentile per route template.",
            ),
            graph(
                "In flight",
                "short",
                12,
                &[("sum(app_web_http_requests_in_flight)", "in flight")],
                "Requests app-web is working on at the moment of each scrape.",
            ),
            graph(
                "Response cache",
                "ops",
                12,
                &[
                    ("sum(rate(app_web_cache_hits_total[5m]))", "hits"),
                    ("sum(rate(app_web_cache_misses_total[5m]))", "misses"),
                    (
                        "sum(rate(app_web_cache_bypass_total[5m]))",
                        "bypassed (Redis unavailable)",
                    ),
                ],
                "Bypasses mean Redis did not answer and PostgreSQL served the request.",
            ),
            graph(
                "Rate-limited requests",
                "reqps",
                12,
                &[("sum(rate(app_web_rate_limited_total[5m]))", "answered 429")],
                "Requests app-web refused with 429 under its per-client limit.",
            ),
            graph(
                "Scrape targets up",
                "short",
                12,
                &[("sum by (job) (up)", "{{job}}")],
                "How many targets of each job answered their last scrape.",
            ),
            graph(
                "Host",
                "percentunit",
                12,
                &[
                    (
                        "1 - avg(rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))",
                        "CPU busy",
                    ),
                    (
                        "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
                        "memory used",
                    ),
                    (
                        "1 - node_filesystem_avail_bytes{fstype!~\"tmpfs|overlay|squashfs\"} / node_filesystem_size_bytes{fstype!~\"tmpfs|overlay|squashfs\"}",
                        "disk used {{mountpoint}}",
                    ),
                ],
                "The host the stack runs on; the DiskFilling alert watches its disks.",
            ),
            logs(
                "app-web logs",
                &[("{service=\"app-web\"} | json", "")],
                "app-web's JSON lines from Loki; filter on level, route or request_id.",
            ),
        ],
    },
    Dashboard {
        file: "postgresql.json",
        uid: "app-postgresql",
        title: "App: PostgreSQL",
        panels: &[
            stat(
                "Up",
                "bool",
                &[("min(pg_up)", "")],
                "1 when postgres-exporter reaches PostgreSQL.",
            ),
            stat(
                "Connections used",
                "percentunit",
                &[(
                    "sum(pg_stat_activity_count) / max(pg_settings_max_connections)",
                    "",
                )],
                "Share of max_connections in use; the PostgresConnectionsNearMax alert watches it.",
            ),
            stat(
                "Database size",
                "bytes",
                &[("pg_database_size_bytes{datname=\"app\"}", "")],
                "The app database on disk.",
            ),
            stat(
                "Cache hit ratio",
                "percentunit",
                &[(
                    "sum(rate(pg_stat_database_blks_hit{datname=\"app\"}[5m])) / (sum(rate(pg_stat_database_blks_hit{datname=\"app\"}[5m])) + sum(rate(pg_stat_database_blks_read{datname=\"app\"}[5m])))",
                    "",
                )],
                "Blocks found in shared_buffers; below 99% the working set outgrows memory.",
            ),
            graph(
                "Connections by state",
                "short",
                12,
                &[
                    ("sum by (state) (pg_stat_activity_count)", "{{state}}"),
                    ("max(pg_settings_max_connections)", "max_connections"),
                ],
                "Every database's sessions, by state, against the server's limit.",
            ),
            graph(
                "Transactions",
                "ops",
                12,
                &[
                    (
                        "sum(rate(pg_stat_database_xact_commit{datname=\"app\"}[5m]))",
                        "commits",
                    ),
                    (
                        "sum(rate(pg_stat_database_xact_rollback{datname=\"app\"}[5m]))",
                        "rollbacks",
                    ),
                ],
                "Commits and rollbacks per second in the app database.",
            ),
            graph(
                "app-web's pool",
                "short",
                12,
                &[
                    ("sum(app_web_db_pool_connections)", "open"),
                    ("sum(app_web_db_pool_idle_connections)", "idle"),
                    ("sum(app_web_db_pool_max_connections)", "maximum"),
                ],
                "Connections app-web's replicas hold, summed; requests wait when none is idle.",
            ),
            graph(
                "Deadlocks and conflicts",
                "short",
                12,
                &[
                    (
                        "sum(increase(pg_stat_database_deadlocks{datname=\"app\"}[5m]))",
                        "deadlocks",
                    ),
                    (
                        "sum(increase(pg_stat_database_conflicts{datname=\"app\"}[5m]))",
                        "conflicts",
                    ),
                ],
                "Should stay at zero.",
            ),
        ],
    },
    Dashboard {
        file: "redis.json",
        uid: "app-redis",
        title: "App: Redis",
        panels: &[
            stat(
                "Up",
                "bool",
                &[("min(redis_up)", "")],
                "1 when redis-exporter reaches Redis.",
            ),
            stat(
                "app-web sees Redis",
                "bool",
                &[("min(app_web_redis_up)", "")],
                "0 when an app-web replica cannot reach Redis and bypasses the cache.",
            ),
            stat(
                "Memory used",
                "bytes",
                &[("redis_memory_used_bytes", "")],
                "Memory Redis holds; the RedisMemoryNearMax alert compares it with maxmemory.",
            ),
            stat(
                "Keyspace hit ratio",
                "percentunit",
                &[(
                    "rate(redis_keyspace_hits_total[5m]) / (rate(redis_keyspace_hits_total[5m]) + rate(redis_keyspace_misses_total[5m]))",
                    "",
                )],
                "Lookups that found their key.",
            ),
            graph(
                "Memory",
                "bytes",
                12,
                &[
                    ("redis_memory_used_bytes", "used"),
                    ("redis_memory_max_bytes", "maxmemory"),
                ],
                "maxmemory 0 means no limit.",
            ),
            graph(
                "Commands",
                "ops",
                12,
                &[("rate(redis_commands_processed_total[5m])", "commands")],
                "Commands Redis processed per second.",
            ),
            graph(
                "Clients and keys",
                "short",
                12,
                &[
                    ("redis_connected_clients", "clients"),
                    ("sum(redis_db_keys)", "keys"),
                ],
                "Open client connections, and keys in every database.",
            ),
            graph(
                "Evictions and expiries",
                "ops",
                12,
                &[
                    ("rate(redis_evicted_keys_total[5m])", "evicted"),
                    ("rate(redis_expired_keys_total[5m])", "expired"),
                ],
                "Evictions mean maxmemory is reached; expiries are cache entries timing out.",
            ),
        ],
    },
    Dashboard {
        file: "nginx.json",
        uid: "app-nginx",
        title: "App: nginx and the public endpoint",
        panels: &[
            stat(
                "Up",
                "bool",
                &[("min(nginx_up)", "")],
                "1 when nginx-exporter reads nginx's stub_status.",
            ),
            stat(
                "Public endpoint",
                "bool",
                &[("min(probe_success)", "")],
                "1 when the blackbox exporter fetched https://<site>/healthz with a valid certificate.",
            ),
            stat(
                "Certificate expires in",
                "d",
                &[("min((probe_ssl_earliest_cert_expiry - time()) / 86400)", "")],
                "Days left; the CertificateExpiresIn14Days and CertificateExpiresIn3Days alerts warn ahead.",
            ),
            stat(
                "Probe HTTP status",
                "none",
                &[("max(probe_http_status_code)", "")],
                "What the public endpoint answered the probe.",
            ),
            graph(
                "Requests",
                "reqps",
                12,
                &[("rate(nginx_http_requests_total[5m])", "requests")],
                "Every request nginx handled, on every server block.",
            ),
            graph(
                "Connections",
                "short",
                12,
                &[
                    ("nginx_connections_active", "active"),
                    ("nginx_connections_reading", "reading"),
                    ("nginx_connections_writing", "writing"),
                    ("nginx_connections_waiting", "waiting (keep-alive)"),
                ],
                "Client connections by what nginx is doing with them.",
            ),
            graph(
                "Accepted and handled",
                "ops",
                12,
                &[
                    ("rate(nginx_connections_accepted[5m])", "accepted"),
                    ("rate(nginx_connections_handled[5m])", "handled"),
                ],
                "A gap between the two means nginx ran out of worker connections.",
            ),
            graph(
                "Probe duration",
                "s",
                12,
                &[("probe_duration_seconds", "{{instance}}")],
                "How long the public endpoint took to answer, TLS handshake included.",
            ),
            logs(
                "nginx logs",
                &[("{service=\"nginx\"} | json", "")],
                "nginx's JSON access lines from Loki; filter on status or request_id.",
            ),
        ],
    },
    Dashboard {
        file: "desktop-releases.json",
        uid: "app-desktop-releases",
        title: "App: desktop releases",
        panels: &[
            stat(
                "Update checks",
                "reqps",
                &[("sum(rate(app_web_update_checks_total[5m]))", "")],
                "Checks the desktop app's updater made per second.",
            ),
            stat(
                "Offered an update",
                "percentunit",
                &[(
                    "sum(rate(app_web_update_checks_total{outcome=\"update\"}[5m])) / sum(rate(app_web_update_checks_total[5m]))",
                    "",
                )],
                "Share of checks answered with a newer release.",
            ),
            stat(
                "Rolled back",
                "reqps",
                &[(
                    "sum(rate(app_web_update_checks_total{outcome=\"rollback\"}[5m]))",
                    "",
                )],
                "Checks from installs on a halted release, sent back to the previous good one.",
            ),
            stat(
                "Beta share",
                "percentunit",
                &[(
                    "sum(rate(app_web_update_checks_total{channel=\"beta\"}[5m])) / sum(rate(app_web_update_checks_total[5m]))",
                    "",
                )],
                "Share of checks from installs on the beta channel.",
            ),
            graph(
                "Checks by outcome",
                "reqps",
                12,
                &[(
                    "sum by (outcome) (rate(app_web_update_checks_total[5m]))",
                    "{{outcome}}",
                )],
                "update: a newer release; rollback: back from a halted one; none: stay.",
            ),
            graph(
                "Checks by channel",
                "reqps",
                12,
                &[(
                    "sum by (channel) (rate(app_web_update_checks_total[5m]))",
                    "{{channel}}",
                )],
                "Stable and beta installs asking.",
            ),
        ],
    },
    Dashboard {
        file: "backups.json",
        uid: "app-backups",
        title: "App: backups",
        panels: &[
            stat(
                "Since the last backup",
                "s",
                &[("time() - app_backup_last_success_timestamp_seconds", "")],
                "Time since the last good backup; the BackupTooOld alert watches it.",
            ),
            stat(
                "Last restore drill",
                "bool",
                &[("app_backup_last_verify_success", "")],
                "1 when the last drill restored the backup and matched its manifest.",
            ),
            stat(
                "Last backup size",
                "bytes",
                &[("app_backup_last_size_bytes", "")],
                "The encrypted, compressed artifact.",
            ),
            stat(
                "Next backup in",
                "s",
                &[("app_backup_next_run_timestamp_seconds - time()", "")],
                "From the schedule's cron expression.",
            ),
            graph(
                "Runs",
                "short",
                12,
                &[(
                    "sum by (result) (increase(app_backup_runs_total[1d]))",
                    "{{result}}",
                )],
                "Backup runs per day by result.",
            ),
            graph(
                "Duration, and the last drill",
                "s",
                12,
                &[
                    ("app_backup_last_duration_seconds", "duration"),
                    (
                        "time() - app_backup_last_verify_timestamp_seconds",
                        "since the last drill",
                    ),
                ],
                "How long the last backup took, and how long ago the last drill ran.",
            ),
        ],
    },
];

impl flags::Dashboards {
    pub fn run(self, _sh: &xshell::Shell) -> anyhow::Result<()> {
        let dir = path::dashboards_dir();
        if self.check {
            let stale = stale(&dir);
            anyhow::ensure!(
                stale.is_empty(),
                "{} differ from their definitions in xtask/src/dashboards.rs: run `cargo xtask dashboards` and commit the result",
                stale.join(", ")
            );
            return Ok(());
        }
        step::run(&format!("write dashboards into {}", dir.display()), || {
            write_all(&dir)
        })
    }
}

/// Every dashboard's file name and its JSON, as written.
pub fn rendered() -> Vec<(&'static str, String)> {
    DASHBOARDS
        .iter()
        .map(|dashboard| {
            let text = serde_json::to_string_pretty(&dashboard_json(dashboard))
                .expect("a dashboard serialises");
            (dashboard.file, format!("{text}\n"))
        })
        .collect()
}

/// The files in `dir` that are missing or differ from what would be written.
fn stale(dir: &Path) -> Vec<String> {
    rendered()
        .into_iter()
        .map(|(file, text)| (dir.join(file), text))
        .filter(|(path, text)| std::fs::read_to_string(path).ok().as_deref() != Some(text))
        .map(|(path, _)| path.display().to_string())
        .collect()
}

fn write_all(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for (file, text) in rendered() {
        // Readable by Grafana's user in the container, like a checked-out file.
        crate::atomic_file::write(&dir.join(file), text.as_bytes(), 0o644)?;
    }
    Ok(())
}

fn dashboard_json(dashboard: &Dashboard) -> Value {
    let mut panels = Vec::new();
    let (mut x, mut y, mut row_height) = (0, 0, 0);
    for (index, panel) in dashboard.panels.iter().enumerate() {
        let height = match panel.kind {
            Kind::Stat => 4,
            Kind::TimeSeries => 8,
            Kind::Logs => 12,
        };
        if x + panel.width > GRID_WIDTH {
            x = 0;
            y += row_height;
            row_height = 0;
        }
        panels.push(panel_json(panel, index + 1, x, y, height));
        x += panel.width;
        row_height = row_height.max(height);
    }
    json!({
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": "Written by `cargo xtask dashboards` from xtask/src/dashboards.rs: change it there and run the command, not in Grafana.",
        "tags": ["app"],
        "timezone": "utc",
        "editable": false,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": { "from": "now-6h", "to": "now" },
        "templating": { "list": [] },
        "annotations": { "list": [] },
        "links": [],
        "panels": panels,
    })
}

fn panel_json(panel: &Panel, id: usize, x: u32, y: u32, height: u32) -> Value {
    let (kind, datasource) = match panel.kind {
        Kind::Stat => ("stat", PROMETHEUS),
        Kind::TimeSeries => ("timeseries", PROMETHEUS),
        Kind::Logs => ("logs", LOKI),
    };
    let datasource = json!({ "type": datasource, "uid": datasource });
    let targets: Vec<Value> = panel
        .queries
        .iter()
        .zip('A'..='Z')
        .map(|((expr, legend), ref_id)| {
            let mut target = json!({
                "refId": ref_id.to_string(),
                "datasource": datasource,
                "expr": expr,
            });
            if !legend.is_empty() {
                target["legendFormat"] = json!(legend);
            }
            target
        })
        .collect();
    let options = match panel.kind {
        Kind::Stat => json!({
            "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        }),
        Kind::TimeSeries => json!({
            "legend": { "displayMode": "list", "placement": "bottom", "showLegend": true },
            "tooltip": { "mode": "multi", "sort": "desc" },
        }),
        Kind::Logs => json!({
            "showTime": true,
            "wrapLogMessage": true,
            "sortOrder": "Descending",
            "enableLogDetails": true,
        }),
    };
    json!({
        "id": id,
        "type": kind,
        "title": panel.title,
        "description": panel.description,
        "gridPos": { "x": x, "y": y, "w": panel.width, "h": height },
        "datasource": datasource,
        "targets": targets,
        "fieldConfig": { "defaults": { "unit": panel.unit }, "overrides": [] },
        "options": options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_dashboards_are_what_the_definitions_write() {
        let stale = stale(&path::dashboards_dir());
        assert!(
            stale.is_empty(),
            "{stale:?} differ from xtask/src/dashboards.rs: run `cargo xtask dashboards` and commit the result"
        );
    }

    #[test]
    fn panels_fill_rows_without_overlapping() {
        for dashboard in DASHBOARDS {
            let json = dashboard_json(dashboard);
            let mut taken = std::collections::HashSet::new();
            for panel in json["panels"].as_array().unwrap() {
                let grid = &panel["gridPos"];
                let (x, y, w, h) = (
                    grid["x"].as_u64().unwrap(),
                    grid["y"].as_u64().unwrap(),
                    grid["w"].as_u64().unwrap(),
                    grid["h"].as_u64().unwrap(),
                );
                assert!(x + w <= u64::from(GRID_WIDTH), "{}", dashboard.title);
                for cell in (x..x + w).flat_map(|cx| (y..y + h).map(move |cy| (cx, cy))) {
                    assert!(
                        taken.insert(cell),
                        "{}: {} overlaps another panel",
                        dashboard.title,
                        panel["title"]
                    );
                }
            }
        }
    }

    #[test]
    fn the_data_sources_the_panels_name_are_provisioned() {
        let provisioned = std::fs::read_to_string(
            path::docker_dir().join("grafana/provisioning/datasources/datasources.yml"),
        )
        .unwrap();
        let document = yaml_rust2::YamlLoader::load_from_str(&provisioned)
            .unwrap()
            .remove(0);
        let sources: Vec<(&str, &str)> = document["datasources"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|source| {
                (
                    source["uid"].as_str().unwrap(),
                    source["type"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(sources, [(PROMETHEUS, "prometheus"), (LOKI, "loki")]);
    }

    #[test]
    fn uids_and_files_are_unique() {
        let mut uids: Vec<&str> = DASHBOARDS.iter().map(|d| d.uid).collect();
        let mut files: Vec<&str> = DASHBOARDS.iter().map(|d| d.file).collect();
        uids.sort();
        uids.dedup();
        files.sort();
        files.dedup();
        assert_eq!(uids.len(), DASHBOARDS.len());
        assert_eq!(files.len(), DASHBOARDS.len());
    }

    #[test]
    fn descriptions_name_alerts_and_leave_their_thresholds_to_the_rules() {
        let rules_dir = path::docker_dir().join("prometheus/rules");
        let mut alerts = Vec::new();
        for entry in std::fs::read_dir(&rules_dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            alerts.extend(text.lines().filter_map(|line| {
                line.trim()
                    .strip_prefix("- alert: ")
                    .map(|name| name.trim().to_owned())
            }));
        }
        assert!(!alerts.is_empty(), "no alerts in {}", rules_dir.display());
        for dashboard in DASHBOARDS {
            for panel in dashboard.panels {
                let description = panel.description;
                let named: Vec<&str> = description
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|word| alerts.iter().any(|alert| alert == word))
                    .collect();
                if description.contains("alert") {
                    assert!(
                        !named.is_empty(),
                        "{}: {description:?} speaks of an alert but names none of the rules'",
                        dashboard.file
                    );
                }
                if !named.is_empty() {
                    // The rule file holds the threshold; a copy here would go stale.
                    let without_names = named
                        .iter()
                        .fold(description.to_owned(), |text, name| text.replace(name, ""));
                    assert!(
                        !without_names.chars().any(|c| c.is_ascii_digit()),
                        "{}: {description:?} repeats a threshold of {named:?}",
                        dashboard.file
                    );
                }
            }
        }
    }
}
