-- The row-level security of the hub as it was before the InitPlan form (postgres_schema.sql before
-- commit h34): one SECURITY DEFINER function call per row, each running its own EXISTS queries.
-- NOT applied by `hub init`: kept so `bench/hub_read.py --policy bench/hub_policy_perrow.sql`
-- measures the schema's policies against these side by side (docs/operations.md, "The hub's read
-- side"). Run after `hub init`; the same rows are visible either way.
-- Whether the connected role may see all of `site` at `ts` — whole readings, as signed, and what
-- goes with them (statuses, alert events, keys): its own jurisdiction's sites, or a site an
-- agreement in force shares with it raw and with every metric, once the agreement's delay has
-- passed. SECURITY DEFINER so the policy can read the jurisdiction and agreement tables on its
-- behalf; the policies pass `current_user`, so `SET ROLE` (the hub's API) is judged like a login.
CREATE OR REPLACE FUNCTION hub_may_see(p_role name, p_site text, p_ts timestamptz) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM site s JOIN jurisdiction j ON j.id = s.jurisdiction
        WHERE s.id = p_site AND pg_has_role(p_role, j.db_role, 'MEMBER')
    ) OR EXISTS (
        SELECT 1 FROM agreement a JOIN jurisdiction g ON g.id = a.grantee
        JOIN site s ON s.id = p_site AND s.jurisdiction = a.grantor
        WHERE pg_has_role(p_role, g.db_role, 'MEMBER')
          AND p_site = ANY (a.sites) AND a.form = 'raw' AND a.metrics IS NULL
          AND p_ts >= a.valid_from AND (a.valid_to IS NULL OR p_ts < a.valid_to)
          AND p_ts <= now() - a.delay
          AND a.version = (SELECT max(b.version) FROM agreement b WHERE b.name = a.name)
    )
$$;

-- Whether the connected role may see one metric of `site` at `ts` in `p_form` (`raw`: the value of
-- a reading; `hourly`: an hourly aggregate, judged at the hour's end). Its own sites; an agreement
-- in force naming the site and the metric (or every metric), raw for raw values, raw or hourly for
-- hourly aggregates.
CREATE OR REPLACE FUNCTION hub_may_see_metric(
    p_role name, p_site text, p_ts timestamptz, p_metric text, p_form text
) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM site s JOIN jurisdiction j ON j.id = s.jurisdiction
        WHERE s.id = p_site AND pg_has_role(p_role, j.db_role, 'MEMBER')
    ) OR EXISTS (
        SELECT 1 FROM agreement a JOIN jurisdiction g ON g.id = a.grantee
        JOIN site s ON s.id = p_site AND s.jurisdiction = a.grantor
        WHERE pg_has_role(p_role, g.db_role, 'MEMBER')
          AND p_site = ANY (a.sites) AND (a.metrics IS NULL OR p_metric = ANY (a.metrics))
          AND (a.form = 'raw' OR a.form = p_form)
          AND p_ts >= a.valid_from AND (a.valid_to IS NULL OR p_ts < a.valid_to)
          AND p_ts <= now() - a.delay
          AND a.version = (SELECT max(b.version) FROM agreement b WHERE b.name = a.name)
    )
$$;

-- A role that may see only some metrics of a site raw reads them here, one row per value (the
-- signed payload is not shown: a part of a signed reading does not verify). The view runs as the
-- hub's role and filters by `current_user`, the reader; security_barrier keeps a reader's own
-- functions in WHERE from seeing the rows it filters out.
CREATE OR REPLACE VIEW reading_value WITH (security_barrier) AS
    SELECT r.site, r.node, r.seq, r.ts, r.verdict, m.key AS metric, (m.value #>> '{}')::double precision AS value,
           (r.payload->'metrics'->m.key->>'n')::int AS n,  -- samples averaged (added later: last)
           (r.payload->'metrics'->m.key->>'raw')::double precision AS raw,  -- as the schema's view
           r.payload->'metrics'->m.key->>'cal' AS cal
      FROM reading r CROSS JOIN LATERAL jsonb_each(r.metrics) m
     WHERE jsonb_typeof(m.value) = 'number'
       AND hub_may_see_metric(current_user, r.site, r.ts, m.key, 'raw');

ALTER TABLE reading ENABLE ROW LEVEL SECURITY;
ALTER TABLE node ENABLE ROW LEVEL SECURITY;
ALTER TABLE node_key ENABLE ROW LEVEL SECURITY;
ALTER TABLE node_status ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_event ENABLE ROW LEVEL SECURITY;
ALTER TABLE reading_hourly ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS hourly_visible ON reading_hourly;
CREATE POLICY hourly_visible ON reading_hourly FOR SELECT
    USING (hub_may_see_metric(current_user, site, hour + interval '1 hour', metric, 'hourly'));
DROP POLICY IF EXISTS status_visible ON node_status;
CREATE POLICY status_visible ON node_status FOR SELECT USING (hub_may_see(current_user, site, received));
DROP POLICY IF EXISTS alert_visible ON alert_event;
CREATE POLICY alert_visible ON alert_event FOR SELECT USING (hub_may_see(current_user, site, at));
DROP POLICY IF EXISTS reading_visible ON reading;
CREATE POLICY reading_visible ON reading FOR SELECT USING (hub_may_see(current_user, site, ts));
DROP POLICY IF EXISTS node_visible ON node;
CREATE POLICY node_visible ON node FOR SELECT USING (hub_may_see(current_user, site, '-infinity'::timestamptz)
    OR EXISTS (SELECT 1 FROM reading r WHERE r.site = node.site AND r.node = node.id)
    OR EXISTS (SELECT 1 FROM reading_hourly h WHERE h.site = node.site AND h.node = node.id));
DROP POLICY IF EXISTS key_visible ON node_key;
CREATE POLICY key_visible ON node_key FOR SELECT USING (hub_may_see(current_user, site, '-infinity'::timestamptz)
    OR EXISTS (SELECT 1 FROM reading r WHERE r.site = node_key.site AND r.kid = node_key.kid));

