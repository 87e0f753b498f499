-- Fine-tuning (OpenAI's Files and fine-tuning jobs API): files with their bytes, jobs with their events and the lease
-- that lets one instance at a time follow a job, and the tuned models the jobs produced.
CREATE TABLE ft_files (
  seq bigserial PRIMARY KEY,
  id text NOT NULL UNIQUE,
  api_key_id text NOT NULL,
  purpose text NOT NULL,
  filename text NOT NULL,
  bytes bigint NOT NULL,
  created_at bigint NOT NULL,
  examples integer NOT NULL,
  tokens bigint NOT NULL
);
CREATE INDEX ft_files_by_key ON ft_files (api_key_id, seq);
CREATE TABLE ft_file_contents (
  id text PRIMARY KEY REFERENCES ft_files (id) ON DELETE CASCADE,
  content bytea NOT NULL
);
CREATE TABLE ft_jobs (
  seq bigserial PRIMARY KEY,
  id text NOT NULL UNIQUE,
  api_key_id text NOT NULL,
  created_at bigint NOT NULL,
  model text NOT NULL,
  training_file text NOT NULL,
  hyperparameters text NOT NULL,
  suffix text,
  seed bigint NOT NULL,
  metadata text,
  status text NOT NULL,
  phase text NOT NULL,
  finished_at bigint,
  provider text,
  task_id text,
  task_nonce text,
  dataset_hash text,
  fee numeric(78, 0),
  reservation text,
  trained_tokens bigint,
  fine_tuned_model text,
  result_file text,
  error text,
  lease_holder text,
  lease_until timestamptz
);
CREATE INDEX ft_jobs_by_key ON ft_jobs (api_key_id, seq);
CREATE INDEX ft_jobs_active ON ft_jobs (seq) WHERE phase NOT IN ('done', 'failed', 'cancelled');
CREATE TABLE ft_job_events (
  seq bigserial PRIMARY KEY,
  id text NOT NULL UNIQUE,
  job_id text NOT NULL,
  created_at bigint NOT NULL,
  level text NOT NULL,
  type text NOT NULL,
  message text NOT NULL,
  data text
);
CREATE INDEX ft_job_events_by_job ON ft_job_events (job_id, seq);
CREATE TABLE ft_tuned_models (
  id text PRIMARY KEY,
  api_key_id text NOT NULL,
  base_model text NOT NULL,
  provider text NOT NULL,
  job_id text NOT NULL,
  created_at bigint NOT NULL
);
CREATE INDEX ft_tuned_models_by_key ON ft_tuned_models (api_key_id);
