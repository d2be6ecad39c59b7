-- The regional hub's database (docs/region.md). Applied by `minewatch-gateway hub init`; every
-- statement may run again. The hub's own role owns the tables and writes; each jurisdiction reads
-- as its own role, and row-level security decides which rows it sees.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE IF NOT EXISTS jurisdiction (
    id text PRIMARY KEY,
    name text NOT NULL,
    db_role text NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS site (
    id text PRIMARY KEY,
    jurisdiction text NOT NULL REFERENCES jurisdiction (id),
    identity_key text NOT NULL,  -- base64 raw Ed25519: vouches for the site's node keys
    name text NOT NULL DEFAULT '',
    joined timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS node (
    site text NOT NULL REFERENCES site (id),
    id text NOT NULL,
    location geography (Point, 4326),
    first_seen timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, id)
);

CREATE TABLE IF NOT EXISTS node_key (
    kid text PRIMARY KEY,
    site text NOT NULL REFERENCES site (id),
    node text NOT NULL,
    public_key text NOT NULL,
    status text NOT NULL,
    since timestamptz,
    record jsonb NOT NULL,  -- the site registry's record, as vouched
    vouch text NOT NULL,
    received timestamptz NOT NULL DEFAULT now()
);

-- One row per (site, node, seq): a reading keeps its ts whatever path it took, so the primary key
-- (which must hold the partition key) refuses every redelivery.
CREATE TABLE IF NOT EXISTS reading (
    site text NOT NULL,
    node text NOT NULL,
    seq bigint NOT NULL,
    ts timestamptz NOT NULL,
    received timestamptz NOT NULL DEFAULT now(),
    verdict text NOT NULL,  -- verified | unsigned
    kid text,
    metrics jsonb NOT NULL,  -- {"pm2_5": 12.3, ...}: the values, for queries
    payload jsonb NOT NULL,  -- the reading as the node signed it
    PRIMARY KEY (site, node, seq, ts)
) PARTITION BY RANGE (ts);

-- When the site stored the reading (its `received`), as the site says: a key the site revoked
-- later vouches for what it stored before (docs/trust.md). NULL when the site did not say.
ALTER TABLE reading ADD COLUMN IF NOT EXISTS site_received timestamptz;

-- A node's status messages as its site received them; the latest position moves `node.location`.
CREATE TABLE IF NOT EXISTS node_status (
    site text NOT NULL,
    node text NOT NULL,
    received timestamptz NOT NULL,
    state text NOT NULL,
    payload jsonb NOT NULL,
    PRIMARY KEY (site, node, received)
);

-- Alert events of the sites (raised, reminder, cleared, acknowledged), as the site recorded them.
CREATE TABLE IF NOT EXISTS alert_event (
    site text NOT NULL,
    node text NOT NULL,
    id text NOT NULL,
    state text NOT NULL,
    at timestamptz NOT NULL,
    payload jsonb NOT NULL,
    PRIMARY KEY (id, state, at)
);

-- Field records of the sites (docs/region.md, "Field records"): their maintenance visits, and the
-- residents' observations a site's monitor accepted, with every decision on them (who, when, why).
-- Each is stored once under the name the site gives it, never replaced: one of the same name that
-- differs is refused and kept in `reject` (reason field_conflict). Who observed stays at the site;
-- a photo is known here by its hashes only.
CREATE TABLE IF NOT EXISTS maintenance_visit (
    site text NOT NULL REFERENCES site (id),
    node text NOT NULL,
    kind text NOT NULL,             -- cleaned | moved | replaced | calibrated | inspected
    at timestamptz NOT NULL,
    done_by text NOT NULL,          -- the site's `by`
    note text NOT NULL DEFAULT '',
    flag_from timestamptz,          -- the readings it marks: ts in (flag_from, flag_to]
    flag_to timestamptz,
    recorded timestamptz NOT NULL,  -- when the site was told
    entered_by text,                -- the monitor account that entered it at the site's dashboard
    received timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, node, kind, at)
);

CREATE TABLE IF NOT EXISTS observation (
    site text NOT NULL REFERENCES site (id),
    id text NOT NULL,               -- made by the phone
    kind text NOT NULL,
    text text NOT NULL DEFAULT '',
    at timestamptz NOT NULL,        -- when it was seen
    node text,                      -- NULL: a position only
    place text NOT NULL,            -- node | position | map
    lat double precision,
    lon double precision,
    site_received timestamptz NOT NULL,
    photo_received_sha256 text,     -- of the bytes the phone sent
    photo_sha256 text,              -- of the re-encoded photo the site serves
    -- with two or more photos, every one's hashes in order (the first is photo_*); NULL with one
    -- or none, as a site sends them (docs/region.md, "Field records")
    photos_received_sha256 text[],
    photos_sha256 text[],
    near_node text,                 -- a position's nearest node within 2 km (NULL: none, or a node)
    received timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, id)
);
-- A hub made before several photos per observation gains their columns here. Only when missing:
-- ALTER TABLE takes the table's exclusive lock even when IF NOT EXISTS finds the column, and a
-- reader holding a lock on another table of this script while waiting for this one deadlocks it.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'observation'::regclass
                   AND attname = 'photos_sha256' AND NOT attisdropped) THEN
        ALTER TABLE observation ADD COLUMN IF NOT EXISTS photos_received_sha256 text[],
            ADD COLUMN IF NOT EXISTS photos_sha256 text[];
    END IF;
END $$;
-- and one made before `near_node` was forwarded gains it (the same care)
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'observation'::regclass
                   AND attname = 'near_node' AND NOT attisdropped) THEN
        ALTER TABLE observation ADD COLUMN IF NOT EXISTS near_node text;
    END IF;
END $$;

CREATE TABLE IF NOT EXISTS observation_decision (
    site text NOT NULL,
    observation text NOT NULL,
    decision text NOT NULL,         -- accepted | rejected
    at timestamptz NOT NULL,
    decided_by text NOT NULL,
    why text NOT NULL DEFAULT '',
    PRIMARY KEY (site, observation, decision, at),
    FOREIGN KEY (site, observation) REFERENCES observation (site, id)
);

CREATE TABLE IF NOT EXISTS reject (
    id bigserial PRIMARY KEY,
    received timestamptz NOT NULL DEFAULT now(),
    topic_site text,
    reason text NOT NULL,
    detail text NOT NULL,
    payload bytea NOT NULL
);

-- What one jurisdiction shares with another: recorded, versioned, never edited in place.
CREATE TABLE IF NOT EXISTS agreement (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    version int NOT NULL,
    grantor text NOT NULL REFERENCES jurisdiction (id),
    grantee text NOT NULL REFERENCES jurisdiction (id),
    sites text[] NOT NULL,
    delay interval NOT NULL DEFAULT '0',
    licence text NOT NULL,
    valid_from timestamptz NOT NULL,
    valid_to timestamptz,
    recorded timestamptz NOT NULL DEFAULT now(),
    recorded_by text NOT NULL,
    UNIQUE (name, version)
);
-- Which metrics an agreement shares (NULL: every metric) and in what form: `raw` (the readings
-- themselves) or `hourly` (only the hourly means of `reading_hourly`). Added after the first
-- release of the schema, so a hub made before them gains them here.
ALTER TABLE agreement ADD COLUMN IF NOT EXISTS metrics text[];
ALTER TABLE agreement ADD COLUMN IF NOT EXISTS form text NOT NULL DEFAULT 'raw';
DO $$ BEGIN
    ALTER TABLE agreement ADD CONSTRAINT agreement_form CHECK (form IN ('raw', 'hourly'));
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- Hourly aggregates of every metric, kept at ingest in the same transaction as the readings they
-- come from (only rows newly stored count, so a redelivered batch adds nothing): what an agreement
-- of form `hourly` shares. The mean is total / n.
CREATE TABLE IF NOT EXISTS reading_hourly (
    site text NOT NULL,
    node text NOT NULL,
    metric text NOT NULL,
    hour timestamptz NOT NULL,
    n int NOT NULL,
    total double precision NOT NULL,
    min double precision NOT NULL,
    max double precision NOT NULL,
    PRIMARY KEY (site, node, metric, hour)
);

-- Warnings to neighbours (docs/region.md): a site's rule that concerns another jurisdiction, the
-- people to warn there in order, each warning's state and everything that happened to it.
CREATE TABLE IF NOT EXISTS contact (
    jurisdiction text NOT NULL REFERENCES jurisdiction (id),
    rank int NOT NULL,
    name text NOT NULL,
    channel jsonb NOT NULL,  -- an [[alerts.channels]] table: webhook, email, apprise, ...
    PRIMARY KEY (jurisdiction, rank)
);

CREATE TABLE IF NOT EXISTS warning_rule (
    site text NOT NULL REFERENCES site (id),
    rule text NOT NULL,
    neighbour text NOT NULL REFERENCES jurisdiction (id),
    escalate_after interval NOT NULL DEFAULT '30 minutes',
    PRIMARY KEY (site, rule, neighbour)
);

CREATE TABLE IF NOT EXISTS warning (
    id bigserial PRIMARY KEY,
    alert_id text NOT NULL,
    site text NOT NULL,
    node text NOT NULL,
    rule text NOT NULL,
    neighbour text NOT NULL,
    alert jsonb NOT NULL,           -- the raising alert event
    raised timestamptz NOT NULL,    -- when the hub opened the warning
    contact_rank int NOT NULL DEFAULT 0,   -- the last contact warned (0: none yet)
    last_sent timestamptz,
    confirmed timestamptz,
    confirmed_by text,
    ended timestamptz,              -- the site's all-clear arrived
    end_sent timestamptz,
    UNIQUE (alert_id, neighbour)
);

CREATE TABLE IF NOT EXISTS warning_log (
    warning bigint NOT NULL REFERENCES warning (id),
    at timestamptz NOT NULL,
    what text NOT NULL,             -- warning | escalated | confirmed | end | failed
    contact text,
    who text,
    detail text NOT NULL DEFAULT ''
);

-- What the connected role may see, as windows: one per site it owns (every metric, raw, all time)
-- and one per site of each agreement in force with it (the agreement's latest version: its
-- validity, delay, metrics — NULL: all — and form). SECURITY DEFINER so it can read the
-- jurisdiction and agreement tables on the role's behalf; callers pass `current_user`, so
-- `SET ROLE` (the hub's API) is judged like a login.
--
-- The policies below call it as `(SELECT hub_windows(current_user))`: an uncorrelated scalar
-- subquery, which PostgreSQL runs ONCE per query (an InitPlan), and each row is only compared with
-- that small array. A SECURITY DEFINER function called per row (as the first policies did) is never
-- inlined and ran its own queries for every row: 7–11 times the owner's time for a report
-- (docs/operations.md, "The hub's read side"). The comparisons are written out in each policy
-- for the same reason; `hub_may_see` and `hub_may_see_metric` say the same for one row.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'hub_share_window') THEN
        CREATE TYPE hub_share_window AS (
            site text, lo timestamptz, hi timestamptz, lag interval, metrics text[], form text
        );
    END IF;
END $$;
CREATE OR REPLACE FUNCTION hub_windows(p_role name) RETURNS hub_share_window[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce(array_agg(w), '{}') FROM (
        SELECT ROW(s.id, '-infinity'::timestamptz, 'infinity'::timestamptz, '0'::interval,
                   NULL::text[], 'raw')::hub_share_window AS w
          FROM site s JOIN jurisdiction j ON j.id = s.jurisdiction
         WHERE pg_has_role(p_role, j.db_role, 'MEMBER')
        UNION ALL
        SELECT ROW(x, a.valid_from, coalesce(a.valid_to, 'infinity'), a.delay, a.metrics, a.form)::hub_share_window
          FROM agreement a JOIN jurisdiction g ON g.id = a.grantee, unnest(a.sites) x
          JOIN site s ON s.id = x
         WHERE pg_has_role(p_role, g.db_role, 'MEMBER') AND s.jurisdiction = a.grantor
           AND a.version = (SELECT max(b.version) FROM agreement b WHERE b.name = a.name)
    ) t
$$;

-- Whether `p_role` may see all of `site` at `ts` — whole readings, as signed, and what goes with
-- them (statuses, alert events, keys): its own jurisdiction's sites, or a site an agreement in force
-- shares with it raw and with every metric, once the agreement's delay has passed.
CREATE OR REPLACE FUNCTION hub_may_see(p_role name, p_site text, p_ts timestamptz) RETURNS boolean
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM unnest(hub_windows(p_role)) v
     WHERE v.site = p_site AND v.metrics IS NULL AND v.form = 'raw'
       AND p_ts >= v.lo AND p_ts < v.hi AND p_ts <= now() - v.lag)
$$;

-- Whether `p_role` may see one metric of `site` at `ts` in `p_form` (`raw`: the value of a reading;
-- `hourly`: an hourly aggregate, judged at the hour's end). Its own sites; an agreement in force
-- naming the site and the metric (or every metric), raw for raw values, raw or hourly for hourly
-- aggregates.
CREATE OR REPLACE FUNCTION hub_may_see_metric(
    p_role name, p_site text, p_ts timestamptz, p_metric text, p_form text
) RETURNS boolean
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM unnest(hub_windows(p_role)) v
     WHERE v.site = p_site AND (v.metrics IS NULL OR p_metric = ANY (v.metrics))
       AND (v.form = 'raw' OR v.form = p_form)
       AND p_ts >= v.lo AND p_ts < v.hi AND p_ts <= now() - v.lag)
$$;

-- A role that may see only some metrics of a site raw reads them here, one row per value (the
-- signed payload is not shown: a part of a signed reading does not verify). The view runs as the
-- hub's role and filters by `current_user`, the reader; security_barrier keeps a reader's own
-- functions in WHERE from seeing the rows it filters out.
CREATE OR REPLACE VIEW reading_value WITH (security_barrier) AS
    SELECT r.site, r.node, r.seq, r.ts, r.verdict, m.key AS metric, (m.value #>> '{}')::double precision AS value,
           (r.payload->'metrics'->m.key->>'n')::int AS n,  -- samples averaged (added later: last)
           -- added later still (a view gains columns only at its end): the raw value and the
           -- calibration id of that metric, as the node signed them
           (r.payload->'metrics'->m.key->>'raw')::double precision AS raw,
           r.payload->'metrics'->m.key->>'cal' AS cal
      FROM reading r CROSS JOIN LATERAL jsonb_each(r.metrics) m
     WHERE jsonb_typeof(m.value) = 'number'
       AND EXISTS (SELECT 1 FROM unnest((SELECT hub_windows(current_user))) v
            WHERE v.site = r.site AND (v.metrics IS NULL OR m.key = ANY (v.metrics))
              AND r.ts >= v.lo AND r.ts < v.hi AND r.ts <= now() - v.lag AND v.form = 'raw');

-- The same values one row per reading, for the hub's read side (gateway/stores/postgres_base.py):
-- of each reading the role may not see whole, what it may see of it — the metrics it may see raw
-- (`metrics`: name → value; `parts`: name → the metric's entry as the node signed it, {value, raw,
-- n, cal}) and what belongs to the whole reading rather than to a metric: `seq`, `flags` (the
-- quality flags, as signed), `period_s`, `verdict` and `received` (when the hub stored it). Never
-- a value, raw value or calibration id of a metric the role is not shared. One row per reading
-- lets a query keep its index order and its limit.
CREATE OR REPLACE VIEW reading_part WITH (security_barrier) AS
    SELECT r.site, r.node, r.seq, r.ts, r.verdict, p.metrics, p.parts,
           r.payload->'flags' AS flags, (r.payload->>'period_s')::int AS period_s, r.received
      FROM reading r CROSS JOIN LATERAL (
        SELECT jsonb_object_agg(m.key, m.value) AS metrics,
               jsonb_object_agg(m.key, r.payload->'metrics'->m.key) AS parts
          FROM jsonb_each(r.metrics) m
         WHERE jsonb_typeof(m.value) = 'number'
           AND EXISTS (SELECT 1 FROM unnest((SELECT hub_windows(current_user))) v
                WHERE v.site = r.site AND (v.metrics IS NULL OR m.key = ANY (v.metrics))
                  AND r.ts >= v.lo AND r.ts < v.hi AND r.ts <= now() - v.lag AND v.form = 'raw')
           -- inside the per-reading part, so the readings keep their index order (no anti-join)
           AND NOT EXISTS (SELECT 1 FROM unnest((SELECT hub_windows(current_user))) w
                WHERE w.site = r.site AND w.metrics IS NULL AND w.form = 'raw'
                  AND r.ts >= w.lo AND r.ts < w.hi AND r.ts <= now() - w.lag)
      ) p
     WHERE p.metrics IS NOT NULL;

-- The same rows, each node's newest first, for a node's latest part (the dashboard's latest value):
-- `WHERE site = … AND node = … AND ts <= … LIMIT 1` with no ORDER BY of its own. A security_barrier
-- view is planned as a subquery of its own, so an ORDER BY outside it makes PostgreSQL build every
-- part of the node and sort them (148 ms at 2,880 readings a node, growing with history); with the
-- order inside and only a LIMIT outside, the planner is told the LIMIT and scans the index
-- `reading (site, node, ts)` backwards, building parts until the first it may see: one probe. The
-- body is reading_part's, repeated (a view over reading_part would be planned apart again).
CREATE OR REPLACE VIEW reading_part_newest WITH (security_barrier) AS
    SELECT r.site, r.node, r.seq, r.ts, r.verdict, p.metrics, p.parts,
           r.payload->'flags' AS flags, (r.payload->>'period_s')::int AS period_s, r.received
      FROM reading r CROSS JOIN LATERAL (
        SELECT jsonb_object_agg(m.key, m.value) AS metrics,
               jsonb_object_agg(m.key, r.payload->'metrics'->m.key) AS parts
          FROM jsonb_each(r.metrics) m
         WHERE jsonb_typeof(m.value) = 'number'
           AND EXISTS (SELECT 1 FROM unnest((SELECT hub_windows(current_user))) v
                WHERE v.site = r.site AND (v.metrics IS NULL OR m.key = ANY (v.metrics))
                  AND r.ts >= v.lo AND r.ts < v.hi AND r.ts <= now() - v.lag AND v.form = 'raw')
           -- inside the per-reading part, so the readings keep their index order (no anti-join)
           AND NOT EXISTS (SELECT 1 FROM unnest((SELECT hub_windows(current_user))) w
                WHERE w.site = r.site AND w.metrics IS NULL AND w.form = 'raw'
                  AND r.ts >= w.lo AND r.ts < w.hi AND r.ts <= now() - w.lag)
      ) p
     WHERE p.metrics IS NOT NULL
     ORDER BY r.site, r.node, r.ts DESC;

ALTER TABLE reading ENABLE ROW LEVEL SECURITY;
ALTER TABLE node ENABLE ROW LEVEL SECURITY;
ALTER TABLE node_key ENABLE ROW LEVEL SECURITY;
ALTER TABLE node_status ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_event ENABLE ROW LEVEL SECURITY;
ALTER TABLE reading_hourly ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS hourly_visible ON reading_hourly;
CREATE POLICY hourly_visible ON reading_hourly FOR SELECT USING (EXISTS (
    SELECT 1 FROM unnest((SELECT hub_windows(current_user))) v
     WHERE v.site = reading_hourly.site AND (v.metrics IS NULL OR reading_hourly.metric = ANY (v.metrics))
       AND reading_hourly.hour + interval '1 hour' >= v.lo AND reading_hourly.hour + interval '1 hour' < v.hi
       AND reading_hourly.hour + interval '1 hour' <= now() - v.lag));
DROP POLICY IF EXISTS status_visible ON node_status;
CREATE POLICY status_visible ON node_status FOR SELECT USING (EXISTS (
    SELECT 1 FROM unnest((SELECT hub_windows(current_user))) v
     WHERE v.site = node_status.site AND v.metrics IS NULL AND v.form = 'raw'
       AND node_status.received >= v.lo AND node_status.received < v.hi
       AND node_status.received <= now() - v.lag));
DROP POLICY IF EXISTS alert_visible ON alert_event;
CREATE POLICY alert_visible ON alert_event FOR SELECT USING (EXISTS (
    SELECT 1 FROM unnest((SELECT hub_windows(current_user))) v
     WHERE v.site = alert_event.site AND v.metrics IS NULL AND v.form = 'raw'
       AND alert_event.at >= v.lo AND alert_event.at < v.hi AND alert_event.at <= now() - v.lag));
DROP POLICY IF EXISTS reading_visible ON reading;
CREATE POLICY reading_visible ON reading FOR SELECT USING (EXISTS (
    SELECT 1 FROM unnest((SELECT hub_windows(current_user))) v
     WHERE v.site = reading.site AND v.metrics IS NULL AND v.form = 'raw'
       AND reading.ts >= v.lo AND reading.ts < v.hi AND reading.ts <= now() - v.lag));
-- Field records: as statuses and alert events, for a role that may see the site whole at the
-- record's time (a visit's, a decision's, an observation's `at`); an observation only while the
-- latest decision the role may see on it is `accepted` (a retraction at the site hides it here).
-- The decisions' policy does not look at `observation`, whose policy looks at them.
ALTER TABLE maintenance_visit ENABLE ROW LEVEL SECURITY;
ALTER TABLE observation ENABLE ROW LEVEL SECURITY;
ALTER TABLE observation_decision ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS visit_visible ON maintenance_visit;
CREATE POLICY visit_visible ON maintenance_visit FOR SELECT USING (EXISTS (
    SELECT 1 FROM unnest((SELECT hub_windows(current_user))) v
     WHERE v.site = maintenance_visit.site AND v.metrics IS NULL AND v.form = 'raw'
       AND maintenance_visit.at >= v.lo AND maintenance_visit.at < v.hi
       AND maintenance_visit.at <= now() - v.lag));
DROP POLICY IF EXISTS decision_visible ON observation_decision;
CREATE POLICY decision_visible ON observation_decision FOR SELECT USING (EXISTS (
    SELECT 1 FROM unnest((SELECT hub_windows(current_user))) v
     WHERE v.site = observation_decision.site AND v.metrics IS NULL AND v.form = 'raw'
       AND observation_decision.at >= v.lo AND observation_decision.at < v.hi
       AND observation_decision.at <= now() - v.lag));
DROP POLICY IF EXISTS observation_visible ON observation;
CREATE POLICY observation_visible ON observation FOR SELECT USING (EXISTS (
    SELECT 1 FROM unnest((SELECT hub_windows(current_user))) v
     WHERE v.site = observation.site AND v.metrics IS NULL AND v.form = 'raw'
       AND observation.at >= v.lo AND observation.at < v.hi AND observation.at <= now() - v.lag)
    AND (SELECT d.decision FROM observation_decision d  -- the site's order: time, then decision
          WHERE d.site = observation.site AND d.observation = observation.id
          ORDER BY d.at DESC, d.decision DESC LIMIT 1) = 'accepted');
-- A node and a key: those of its own sites (the window from -infinity), and those of a reading or
-- an hourly aggregate it may see. Each EXISTS is bounded by a window's times (and metrics), so the
-- index finds its first row at once: written as "a row of the node, row-level security deciding",
-- a role that may see none of a node's readings whole (a share of some metrics) had every reading
-- of the node checked and refused, for every query naming a node (bench/hub_read.py).
DROP POLICY IF EXISTS node_visible ON node;
CREATE POLICY node_visible ON node FOR SELECT USING (EXISTS (
    SELECT 1 FROM unnest((SELECT hub_windows(current_user))) v
     WHERE v.site = node.site AND (
           (v.lo = '-infinity' AND v.metrics IS NULL AND v.form = 'raw')
        OR (v.metrics IS NULL AND v.form = 'raw' AND EXISTS (SELECT 1 FROM reading r
             WHERE r.site = node.site AND r.node = node.id
               AND r.ts >= v.lo AND r.ts < v.hi AND r.ts <= now() - v.lag))
        OR (v.metrics IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(v.metrics) x (metric) CROSS JOIN LATERAL (
             SELECT 1 FROM reading_hourly h  -- a probe per metric: (site, node, metric, hour) is the key
              WHERE h.site = node.site AND h.node = node.id AND h.metric = x.metric
                AND h.hour >= v.lo - interval '1 hour' AND h.hour < v.hi - interval '1 hour'
                AND h.hour <= now() - v.lag - interval '1 hour' LIMIT 1) y))
        OR (v.metrics IS NULL AND EXISTS (SELECT 1 FROM reading_hourly h
             WHERE h.site = node.site AND h.node = node.id
               AND h.hour >= v.lo - interval '1 hour' AND h.hour < v.hi - interval '1 hour'
               AND h.hour <= now() - v.lag - interval '1 hour')))));
DROP POLICY IF EXISTS key_visible ON node_key;
CREATE POLICY key_visible ON node_key FOR SELECT USING (
    EXISTS (SELECT 1 FROM unnest((SELECT hub_windows(current_user))) v
             WHERE v.site = node_key.site AND v.lo = '-infinity' AND v.metrics IS NULL AND v.form = 'raw')
    OR EXISTS (SELECT 1 FROM reading r WHERE r.site = node_key.site AND r.kid = node_key.kid));

-- A warning is seen by the neighbour it warns and by whoever may see the site it comes from.
ALTER TABLE warning ENABLE ROW LEVEL SECURITY;
ALTER TABLE warning_log ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS warning_visible ON warning;
CREATE POLICY warning_visible ON warning FOR SELECT USING (
    hub_may_see(current_user, site, raised)
    OR EXISTS (SELECT 1 FROM jurisdiction j WHERE j.id = neighbour AND pg_has_role(current_user, j.db_role, 'MEMBER')));
DROP POLICY IF EXISTS warning_log_visible ON warning_log;
CREATE POLICY warning_log_visible ON warning_log FOR SELECT USING (
    EXISTS (SELECT 1 FROM warning w WHERE w.id = warning_log.warning));

-- Jurisdictions read; they never write. The agreements in force are public (docs/region.md).
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hub_reader') THEN
        CREATE ROLE hub_reader NOLOGIN;
    END IF;
END $$;
GRANT SELECT ON jurisdiction, site, node, node_key, reading, node_status, alert_event, agreement TO hub_reader;
GRANT SELECT ON reading_hourly, reading_value, reading_part, reading_part_newest TO hub_reader;
GRANT SELECT ON warning_rule, warning, warning_log TO hub_reader;
GRANT SELECT ON maintenance_visit, observation, observation_decision TO hub_reader;
