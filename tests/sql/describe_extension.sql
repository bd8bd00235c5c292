-- Every object of the neumf extension with its full definition, one row each, in a stable
-- order: two databases hold the same extension exactly when this query returns the same rows
-- (privileges compared as what they grant: an explicit ACL equal to the default is the default).
-- The upgrade test compares an upgraded database with a fresh install this way.
WITH ext AS (SELECT oid, extnamespace FROM pg_extension WHERE extname = 'neumf'),
members AS (
    SELECT d.classid, d.objid FROM pg_depend d, ext
    WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
),
described AS (
    SELECT pg_describe_object(m.classid, m.objid, 0) AS object,
           CASE m.classid
           WHEN 'pg_proc'::regclass THEN
               (SELECT CASE WHEN p.prokind IN ('f', 'p', 'w') THEN pg_get_functiondef(p.oid)
                            ELSE 'aggregate ' || pg_get_function_identity_arguments(p.oid) END
                       || ' | acl ' || coalesce(p.proacl, acldefault('f', p.proowner))::text
                FROM pg_proc p WHERE p.oid = m.objid)
           WHEN 'pg_class'::regclass THEN
               (SELECT 'kind ' || c.relkind::text
                       || ' | columns ' || coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                                                         || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                                                         || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
                                                         || ' storage ' || a.attstorage::text, ', ' ORDER BY a.attnum)
                                                  FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                                                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
                       || ' | constraints ' || coalesce((SELECT string_agg(co.conname || ' ' || pg_get_constraintdef(co.oid), '; ' ORDER BY co.conname)
                                                      FROM pg_constraint co WHERE co.conrelid = c.oid), '')
                       || ' | indexes ' || coalesce((SELECT string_agg(pg_get_indexdef(i.indexrelid), '; ' ORDER BY pg_get_indexdef(i.indexrelid))
                                                  FROM pg_index i WHERE i.indrelid = c.oid), '')
                       || ' | triggers ' || coalesce((SELECT string_agg(pg_get_triggerdef(t.oid), '; ' ORDER BY t.tgname)
                                                   FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal), '')
                       || ' | row security ' || c.relrowsecurity::text || ' ' || c.relforcerowsecurity::text
                       || ' | policies ' || coalesce((SELECT string_agg(p.polname || ' ' || p.polcmd::text || ' ' || p.polpermissive::text
                                                                     || ' using ' || coalesce(pg_get_expr(p.polqual, p.polrelid), '')
                                                                     || ' check ' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), ''),
                                                                     '; ' ORDER BY p.polname)
                                                   FROM pg_policy p WHERE p.polrelid = c.oid), '')
                       || ' | view ' || coalesce(pg_get_viewdef(c.oid), '')
                       || ' | acl ' || coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner))::text
                FROM pg_class c WHERE c.oid = m.objid)
           WHEN 'pg_type'::regclass THEN
               (SELECT 'type ' || t.typtype::text || ' ' || format_type(t.oid, NULL) FROM pg_type t WHERE t.oid = m.objid)
           ELSE 'class ' || m.classid::regclass::text
           END AS definition
    FROM members m
)
SELECT object, definition FROM described
UNION ALL
-- which tables pg_dump carries the rows of, and with which filter
SELECT 'extension configuration', coalesce((SELECT string_agg(c::regclass::text || ' ' || coalesce(f, ''), ', ' ORDER BY c::regclass::text)
                                            FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(c, f)
                                            WHERE e.extname = 'neumf'), 'none')
ORDER BY 1, 2;
