-- The provider node's shared state: billed responses, their signatures and settlements, for several provider-node
-- processes of one service (src/provider-node/postgres-usage-store.ts). Every row carries the provider address
-- (lower-case), so one database can hold several providers' records. Money is NUMERIC(78,0) neuron; times are epoch
-- milliseconds (BIGINT); users are lower-case addresses.

CREATE TABLE provider_requests (
  provider text NOT NULL,
  res_key text NOT NULL,
  -- Settlement takes a user's records in (created_at, seq) order, as the SQLite store takes (created_at, rowid).
  seq bigserial NOT NULL,
  user_address text NOT NULL,
  created_at bigint NOT NULL,
  endpoint text NOT NULL,
  model text NOT NULL,
  input_count numeric(78, 0) NOT NULL,
  output_count numeric(78, 0) NOT NULL,
  input_fee numeric(78, 0) NOT NULL,
  output_fee numeric(78, 0) NOT NULL,
  fee numeric(78, 0) NOT NULL,
  settlement_id bigint,
  settled boolean NOT NULL DEFAULT false,
  PRIMARY KEY (provider, res_key)
);
CREATE INDEX provider_requests_unsettled ON provider_requests (provider, user_address, created_at, seq) WHERE NOT settled;
CREATE INDEX provider_requests_by_settlement ON provider_requests (settlement_id) WHERE settlement_id IS NOT NULL;

CREATE TABLE provider_settlements (
  id bigserial PRIMARY KEY,
  provider text NOT NULL,
  user_address text NOT NULL,
  nonce numeric(78, 0) NOT NULL,
  total_fee numeric(78, 0) NOT NULL,
  requests_hash text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'sent', 'settled', 'failed')),
  tx_hash text,
  tx_nonce bigint,
  detail text,
  -- The node that claimed the records (host:pid), for the operator.
  node text,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
);
CREATE INDEX provider_settlements_open ON provider_settlements (provider, id) WHERE status IN ('pending', 'sent');
CREATE INDEX provider_settlements_by_user ON provider_settlements (provider, user_address);

CREATE TABLE provider_signatures (
  provider text NOT NULL,
  res_key text NOT NULL,
  text text NOT NULL,
  signature text NOT NULL,
  created_at bigint NOT NULL,
  PRIMARY KEY (provider, res_key)
);
CREATE INDEX provider_signatures_age ON provider_signatures (provider, created_at);
