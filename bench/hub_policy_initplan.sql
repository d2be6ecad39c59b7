-- An alternative to postgres_schema.sql's `reading_visible` policy, measured by
-- `bench/hub_read.py --policy bench/hub_policy_initplan.sql` (docs/operations.md, "The hub's read
-- side"). NOT applied by `hub init`: an experiment for whoever owns the schema's policies.
--
-- Why: `hub_may_see(current_user, site, ts)` is SECURITY DEFINER, so PostgreSQL never inlines it
-- and calls it once per row, each call running its own EXISTS queries (tens of µs a row). Here the
-- role's windows (its own sites, unbounded; each shared site with its validity and delay) are
-- computed ONCE per query — an uncorrelated scalar subquery is an InitPlan — and each row is only
-- compared against that small array. The same rows are visible: tests/gateway/hub/test_hub_read.py
-- and test_hub_web.py pass with it applied.
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'hub_window') THEN
    CREATE TYPE hub_window AS (site text, lo timestamptz, hi timestamptz, lag interval);
  END IF;
END $$;
CREATE OR REPLACE FUNCTION hub_windows(p_role name) RETURNS hub_window[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce(array_agg(w), '{}') FROM (
        SELECT ROW(s.id, '-infinity'::timestamptz, 'infinity'::timestamptz, '0'::interval)::hub_window AS w
          FROM site s JOIN jurisdiction j ON j.id = s.jurisdiction WHERE pg_has_role(p_role, j.db_role, 'MEMBER')
        UNION ALL
        SELECT ROW(x, a.valid_from, coalesce(a.valid_to, 'infinity'), a.delay)::hub_window
          FROM agreement a JOIN jurisdiction g ON g.id = a.grantee, unnest(a.sites) x
          JOIN site s ON s.id = x
         WHERE pg_has_role(p_role, g.db_role, 'MEMBER') AND s.jurisdiction = a.grantor
           AND a.version = (SELECT max(b.version) FROM agreement b WHERE b.name = a.name)
    ) t
$$;
DROP POLICY IF EXISTS reading_visible ON reading;
CREATE POLICY reading_visible ON reading FOR SELECT USING (EXISTS (
    SELECT 1 FROM unnest((SELECT hub_windows(current_user))) v
     WHERE v.site = reading.site AND reading.ts >= v.lo AND reading.ts < v.hi AND reading.ts <= now() - v.lag));
