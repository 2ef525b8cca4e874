/* dbtool archive: the destination commits durably */
-- Only `off` is weaker than a local flush; stronger settings are the server's to keep.
SELECT set_config('synchronous_commit', 'on', false) WHERE current_setting('synchronous_commit') = 'off'
