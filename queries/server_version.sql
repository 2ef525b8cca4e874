/* dbtool: server version */
-- Both forms: the number picks query variants and tools, the text is what people read.
SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS text
