/* dbtool: top_query_texts */
-- The texts of the top statements, for the table and JSON reports only: the array below
-- is filled with the queryids the top_queries query returned (numbers dbtool parsed, never
-- text). Any showtext := true call makes the server read the whole query-text file and copy
-- every statement's text before this WHERE filters them, which is why Prometheus output and
-- scheduled runs never run it. Text is shown only to the statement's role or
-- pg_read_all_stats, and truncated.
SELECT DISTINCT ON (queryid) queryid::text AS queryid,
       left(regexp_replace(query, '\s+', ' ', 'g'), 200) AS query
FROM pg_stat_statements(showtext := true)
WHERE queryid = ANY(':queryids'::bigint[])
ORDER BY queryid
