-- What the calls in flight hold, beside what was spent: a reservation is then one UPDATE of the key's row, whose
-- check Postgres makes against the row's newest version, instead of a sum over key_reservations under a lock.
ALTER TABLE api_keys ADD COLUMN reserved numeric(78, 0) NOT NULL DEFAULT 0;
UPDATE api_keys SET reserved = coalesce((SELECT sum(amount) FROM key_reservations r WHERE r.key_id = api_keys.id), 0);
