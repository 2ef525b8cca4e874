/* dbtool archive: how this server lexes string literals (for --where) */
SELECT current_setting('standard_conforming_strings') AS standard
