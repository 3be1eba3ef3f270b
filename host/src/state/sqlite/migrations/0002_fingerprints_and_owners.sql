-- posbridge state, version 2.

-- A fingerprint of each delivered record's content: a record whose id comes back with other
-- amounts is parked as a conflict instead of being skipped as a duplicate.
ALTER TABLE delivery_ledger ADD COLUMN content_hash TEXT;

-- The process that runs a run (`host:pid:start`): a run still 'running' whose process is gone
-- was killed, and a later process marks it 'interrupted'.
ALTER TABLE runs ADD COLUMN owner TEXT;
