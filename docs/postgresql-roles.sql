-- Roles of a production ledger: run as the schema's owner once the owner has opened the
-- ledger (which creates its tables and guard triggers) and run `dinsos-ledger rebuild`
-- (which creates the projection tables). Replace ledger_schema, ledger_writer and
-- ledger_reader with your names; see docs/postgresql.md, "Append-only storage and roles".
GRANT USAGE ON SCHEMA ledger_schema TO ledger_writer, ledger_reader;
-- The writer (imports, forget, reconcile): everything on the derived and key tables ...
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ledger_schema TO ledger_writer;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA ledger_schema TO ledger_writer;
-- ... but only INSERT and SELECT on the history: stored events and chain links.
REVOKE UPDATE, DELETE, TRUNCATE ON ledger_schema.ledger_events, ledger_schema.dinsos_chain
  FROM ledger_writer;
-- The reader (auditors, analysts: verify, balances, continuity, export, report).
GRANT SELECT ON ALL TABLES IN SCHEMA ledger_schema TO ledger_reader;
