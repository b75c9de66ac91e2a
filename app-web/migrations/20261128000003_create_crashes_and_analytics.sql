-- Desktop crash reports (app-web/src/crashes): one row per uploaded minidump, which lives in
-- the crash store folder under `minidump_name`. The symbolication worker fills in the rest;
-- reports with the same `signature` (the top frames of the crashing thread) form a group.
CREATE TABLE crash_reports (
    id uuid PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    crashed_at timestamptz,
    product text NOT NULL CHECK (char_length(product) BETWEEN 1 AND 64),
    version text NOT NULL CHECK (char_length(version) BETWEEN 1 AND 64),
    channel text NOT NULL CHECK (char_length(channel) BETWEEN 1 AND 32),
    os text NOT NULL CHECK (char_length(os) BETWEEN 1 AND 32),
    arch text NOT NULL CHECK (char_length(arch) BETWEEN 1 AND 32),
    -- The analytics session the crash ended, for crash-free session rates.
    session_id text CHECK (char_length(session_id) <= 64),
    panic_message text CHECK (char_length(panic_message) <= 4096),
    minidump_name text NOT NULL,
    minidump_bytes bigint NOT NULL,
    minidump_sha256 text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'done', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    error text,
    crash_reason text,
    crash_address text,
    signature text,
    -- Short stable id of the signature, for URLs.
    group_id text,
    -- The crashing thread's frames, symbolicated: [{module, function, file, line, offset}].
    stack jsonb,
    -- Modules of the crashing thread that had no symbols when the report was processed, as
    -- `<debug file>/<debug id>`; uploading one of them processes the report again.
    missing_modules text[] NOT NULL DEFAULT '{}',
    processed_at timestamptz
);

CREATE INDEX crash_reports_pending ON crash_reports (received_at) WHERE status = 'pending';
CREATE INDEX crash_reports_group ON crash_reports (group_id, received_at);
CREATE INDEX crash_reports_version ON crash_reports (version);
CREATE INDEX crash_reports_session ON crash_reports (session_id);

-- Analytics (app-web/src/analytics). Raw events keep no client address, user agent or device
-- id: `user_hash` is SHA-256 over (salt of the day, address, user agent, app), and the salt of
-- a day is deleted once the day is over, so hashes of different days cannot be linked.
CREATE TABLE analytics_salts (
    day date PRIMARY KEY,
    salt bytea NOT NULL CHECK (octet_length(salt) = 32)
);

CREATE TABLE analytics_events (
    id bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    occurred_at timestamptz,
    app text NOT NULL,
    name text NOT NULL,
    session_id text NOT NULL,
    user_hash bytea NOT NULL,
    app_version text NOT NULL DEFAULT '',
    os text NOT NULL DEFAULT '',
    locale text NOT NULL DEFAULT '',
    props jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX analytics_events_received ON analytics_events (received_at);

-- What stays after raw events are purged: per day (of receipt, UTC), app, version and event.
CREATE TABLE analytics_daily (
    day date NOT NULL,
    app text NOT NULL,
    app_version text NOT NULL,
    name text NOT NULL,
    events bigint NOT NULL,
    sessions bigint NOT NULL,
    users bigint NOT NULL,
    -- Of those sessions, the ones a crash report names (crash-free rates outlive raw events).
    crashed_sessions bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, app, app_version, name)
);

-- The days already summed into analytics_daily; a day is summed once it is over.
CREATE TABLE analytics_rollups (
    day date PRIMARY KEY,
    rolled_up_at timestamptz NOT NULL DEFAULT now()
);
