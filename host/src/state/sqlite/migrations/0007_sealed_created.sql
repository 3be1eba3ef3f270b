-- posbridge state, version 7: when a sealed secret was first sealed, so that
-- `GET /api/v1/stores/{storeId}/credentials` can say it (`updated_at` moves on every replace).
-- Plain portable SQL. Secrets sealed before this version take their last update as creation.
ALTER TABLE sealed_secrets ADD COLUMN created_at TEXT;
UPDATE sealed_secrets SET created_at = updated_at WHERE created_at IS NULL;
