-- Notes: the domain the API serves. Limits match the API's validation, so the database refuses
-- what the API would refuse even if a caller bypasses it.
CREATE TABLE notes (
    id uuid PRIMARY KEY,
    title text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    body text NOT NULL DEFAULT '' CHECK (char_length(body) <= 10000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Listing pages newest first by (created_at, id), the keyset the cursor carries.
CREATE INDEX notes_created_at_id ON notes (created_at DESC, id DESC);
