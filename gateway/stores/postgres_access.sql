-- The hub's read side (docs/region.md, "What a jurisdiction sees"): API tokens and the index the
-- readers' queries use. Applied by `minewatch-gateway hub init` after postgres_schema.sql; every
-- statement may run again.

-- A token is shown once when made; only the SHA-256 of its secret is kept. It reads as one
-- jurisdiction's role; a revoked token is refused from then on. Not granted to the readers.
CREATE TABLE IF NOT EXISTS api_token (
    id text PRIMARY KEY,
    jurisdiction text NOT NULL REFERENCES jurisdiction (id),
    secret_sha256 text NOT NULL,
    label text NOT NULL DEFAULT '',
    created timestamptz NOT NULL,
    created_by text NOT NULL,
    revoked timestamptz,
    revoked_by text
);
REVOKE ALL ON api_token FROM PUBLIC;

-- The latest reading of each node, and a node's readings in a range: one index probe per node.
CREATE INDEX IF NOT EXISTS reading_site_node_ts ON reading (site, node, ts);
