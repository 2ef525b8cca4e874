/* dbtool: backup objects */
-- Every object a restore must recreate, by kind and name: recorded in the manifest at dump
-- time and read again from the scratch database by `restore --check`, so an object a restore
-- silently lost fails the check by name. Members of extensions are left out (the extension's
-- own script recreates them), as are the system schemas. Works on PostgreSQL 13+.
WITH ns AS (
  SELECT oid, nspname FROM pg_namespace
  WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\_%'
), ext AS (
  SELECT classid, objid FROM pg_depend WHERE deptype = 'e'
)
SELECT 'schema' AS kind, format('%I', ns.nspname) AS name FROM ns
  WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_namespace'::regclass AND ext.objid = ns.oid)
UNION ALL
SELECT 'extension', format('%I', extname) FROM pg_extension
UNION ALL
SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
         WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table'
         WHEN 'c' THEN 'type' ELSE 'index' END,
       format('%I.%I', ns.nspname, c.relname)
  FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c', 'i', 'I')
    AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_class'::regclass AND ext.objid = c.oid)
UNION ALL
SELECT CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'type' END, format('%I.%I', ns.nspname, t.typname)
  FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
  WHERE t.typtype IN ('d', 'e', 'r')
    AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_type'::regclass AND ext.objid = t.oid)
UNION ALL
SELECT CASE con.contype WHEN 'f' THEN 'foreign key' ELSE 'constraint' END,
       format('%I.%I.%I', ns.nspname, coalesce(rel.relname, typ.typname), con.conname)
  FROM pg_constraint con JOIN ns ON ns.oid = con.connamespace
  LEFT JOIN pg_class rel ON rel.oid = con.conrelid
  LEFT JOIN pg_type typ ON typ.oid = con.contypid
  WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_class'::regclass AND ext.objid = con.conrelid)
UNION ALL
SELECT 'trigger', format('%I.%I.%I', ns.nspname, rel.relname, tg.tgname)
  FROM pg_trigger tg JOIN pg_class rel ON rel.oid = tg.tgrelid JOIN ns ON ns.oid = rel.relnamespace
  WHERE NOT tg.tgisinternal
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
       format('%I.%I(%s)', ns.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
  FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
  WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_proc'::regclass AND ext.objid = p.oid)
UNION ALL
SELECT 'policy', format('%I.%I.%I', ns.nspname, rel.relname, pol.polname)
  FROM pg_policy pol JOIN pg_class rel ON rel.oid = pol.polrelid JOIN ns ON ns.oid = rel.relnamespace
UNION ALL
SELECT 'rule', format('%I.%I.%I', ns.nspname, rel.relname, r.rulename)
  FROM pg_rewrite r JOIN pg_class rel ON rel.oid = r.ev_class JOIN ns ON ns.oid = rel.relnamespace
  WHERE r.rulename <> '_RETURN'
ORDER BY 1, 2
