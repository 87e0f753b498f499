-- The gateway's shared state: API keys with their budgets, calls in flight, rate-limit windows, the usage ledger.
-- Money is NUMERIC(78,0) neuron (uint256 fits); times are epoch milliseconds (BIGINT), as in the SQLite stores.

CREATE TABLE api_keys (
  id text PRIMARY KEY,
  name text NOT NULL,
  prefix text NOT NULL,
  key_hash text NOT NULL UNIQUE,
  created_at bigint NOT NULL,
  last_used_at bigint,
  revoked_at bigint,
  metadata jsonb NOT NULL DEFAULT '{}',
  expires_at bigint,
  allowed_models jsonb NOT NULL DEFAULT '[]',
  min_verification text NOT NULL DEFAULT 'none',
  tee_only boolean NOT NULL DEFAULT false,
  timeouts jsonb,
  routing jsonb,
  budget numeric(78, 0),
  budget_period text,
  spent numeric(78, 0) NOT NULL DEFAULT 0,
  period_start bigint,
  rpm integer,
  tpm integer
);

-- A call admitted against a budget and not yet settled; older than an hour, it is taken for a crashed process's.
CREATE TABLE key_reservations (
  id uuid PRIMARY KEY,
  key_id text NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
  amount numeric(78, 0) NOT NULL,
  created_at bigint NOT NULL
);
CREATE INDEX key_reservations_by_key ON key_reservations (key_id, created_at);

-- Requests and tokens per key in the current one-minute window, shared by every instance.
CREATE TABLE rate_windows (
  key_id text PRIMARY KEY,
  window_start bigint NOT NULL,
  requests integer NOT NULL,
  tokens bigint NOT NULL
);

CREATE TABLE calls (
  request_id text PRIMARY KEY,
  created_at bigint NOT NULL,
  api_key_id text,
  provider text NOT NULL,
  model text NOT NULL,
  endpoint text NOT NULL,
  stream boolean NOT NULL,
  status integer NOT NULL,
  input_units numeric(78, 0) NOT NULL,
  output_units numeric(78, 0) NOT NULL,
  fee numeric(78, 0) NOT NULL,
  res_key text,
  latency_ms integer NOT NULL,
  delivered_bytes bigint NOT NULL DEFAULT 0,
  verification text NOT NULL,
  verification_level text,
  verification_detail text,
  signed_receipt text
);
CREATE INDEX calls_by_time ON calls (created_at);
CREATE INDEX calls_by_provider ON calls (provider, verification);

CREATE TABLE provider_resumes (
  provider text PRIMARY KEY,
  resumed_at bigint NOT NULL
);
