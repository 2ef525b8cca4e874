/* dbtool archive: the cutoff, evaluated once on the server ($1: the --older-than interval) */
-- Every form a time column may need, so the batches compare with one fixed literal.
SELECT $1::text::interval > interval '0' AS positive,
       now() - $1::text::interval AS at_tstz,
       (now() - $1::text::interval)::text AS at,
       floor(extract(epoch FROM now() - $1::text::interval))::bigint AS epoch_s,
       floor(extract(epoch FROM now() - $1::text::interval) * 1000)::bigint AS epoch_ms,
       (now() - $1::text::interval)::timestamp::text AS ts,
       (now() - $1::text::interval)::date::text AS d
