-- Synthetic implicit-feedback data with planted structure, for demos, tests and benchmarks.
--
-- Users and items fall into `clusters` taste groups (user u and item i belong to group
-- u % clusters and i % clusters). Each user interacts with about `per_user` items (activity
-- varies 0.25×–1.75×), a share `in_cluster` of them from the user's own group, the rest from
-- anywhere. Within either pool, popularity is skewed: an item's chance falls with its rank as
-- rank^(1/skew - 1), so a few items are very popular. A good model recovers the groups:
-- most of a user's recommendations come from the user's own group (random: 1/clusters).
--
--   CREATE TABLE ratings AS SELECT * FROM neumf_synthetic_interactions(10000, 2000);
--   -- ML-20M-sized: SELECT * FROM neumf_synthetic_interactions(138000, 27000, per_user => 145)
CREATE FUNCTION neumf_synthetic_interactions(
    users      integer,
    items      integer,
    per_user   integer DEFAULT 20,
    clusters   integer DEFAULT 8,
    in_cluster float8  DEFAULT 0.8,
    skew       float8  DEFAULT 2.0,
    seed       float8  DEFAULT 0.42
) RETURNS TABLE (user_id bigint, item_id bigint, rating integer, ts timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF users < 1 OR items < clusters OR per_user < 1 OR clusters < 1 THEN
        RAISE EXCEPTION 'neumf_synthetic_interactions: need users >= 1, per_user >= 1, clusters >= 1 and items >= clusters'
            USING ERRCODE = '22023',
                  HINT = pg_catalog.format('Got users %s, items %s, per_user %s, clusters %s.', users, items, per_user, clusters);
    END IF;
    IF in_cluster < 0 OR in_cluster > 1 OR skew < 1 THEN
        RAISE EXCEPTION 'neumf_synthetic_interactions: in_cluster must be in [0, 1] and skew >= 1'
            USING ERRCODE = '22023', HINT = pg_catalog.format('Got in_cluster %s, skew %s.', in_cluster, skew);
    END IF;
    PERFORM setseed(seed);
    RETURN QUERY
    WITH activity AS (
        SELECT u, greatest(1, round(per_user * (0.25 + 1.5 * random())))::int AS n
        FROM generate_series(0, users - 1) AS u
    ), draws AS (
        SELECT a.u, k, random() < in_cluster AS own, random() AS r
        FROM activity a, generate_series(1, a.n) AS k
    )
    SELECT d.u::bigint + 1,
           CASE WHEN d.own
                THEN (floor(power(d.r, skew) * (items / clusters))::bigint * clusters + d.u % clusters) % items + 1
                ELSE floor(power(d.r, skew) * items)::bigint + 1
           END,
           CASE WHEN d.own THEN 4 + (random() < 0.5)::int ELSE 1 + floor(random() * 5)::int END,
           timestamptz '2020-01-01' + d.k * interval '1 hour' + d.u * interval '1 second'
    FROM draws d;
END
$$;
