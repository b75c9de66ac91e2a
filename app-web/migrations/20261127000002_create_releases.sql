-- Desktop releases the update server offers (app-web/src/updates). A version is published
-- once, on one channel, with one artifact per platform and bundle type; its rollout
-- percentage and halt are the only things that change afterwards.
CREATE TABLE releases (
    version text PRIMARY KEY CHECK (char_length(version) BETWEEN 5 AND 64),
    channel text NOT NULL CHECK (channel IN ('stable', 'beta')),
    notes text NOT NULL DEFAULT '' CHECK (char_length(notes) <= 20000),
    pub_date timestamptz NOT NULL,
    rollout_percent smallint NOT NULL DEFAULT 100 CHECK (rollout_percent BETWEEN 0 AND 100),
    halted boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- target and arch are the updater's {{target}} and {{arch}}; bundle_type is what it reports
-- for the installed bundle (deb, rpm, appimage, msi, nsis, app), '' for any.
CREATE TABLE release_artifacts (
    version text NOT NULL REFERENCES releases (version) ON DELETE CASCADE,
    target text NOT NULL CHECK (target IN ('linux', 'windows', 'darwin')),
    arch text NOT NULL CHECK (arch IN ('x86_64', 'aarch64', 'i686', 'armv7')),
    bundle_type text NOT NULL DEFAULT '',
    url text NOT NULL CHECK (url ~ '^https?://'),
    signature text NOT NULL CHECK (signature <> ''),
    PRIMARY KEY (version, target, arch, bundle_type)
);

CREATE INDEX release_artifacts_platform ON release_artifacts (target, arch);
