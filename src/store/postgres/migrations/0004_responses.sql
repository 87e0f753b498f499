-- Responses API responses (previous_response_id, GET and DELETE /v1/responses/{id}), readable by every instance.
-- The input items and the response are kept as the JSON text they were saved as.
CREATE TABLE responses (
  id text PRIMARY KEY,
  api_key_id text,
  created_at bigint NOT NULL,
  previous_response_id text,
  input text NOT NULL,
  response text NOT NULL
);
CREATE INDEX responses_by_time ON responses (created_at);
