-- Egress per receiver: a client certificate and key for mutual TLS (both
-- sealed like the shared secret, never read back), a CA bundle trusted for
-- it instead of the public roots, and OAuth2 client credentials (the
-- secret sealed).
ALTER TABLE receivers ADD COLUMN tls_client_certificate TEXT;
ALTER TABLE receivers ADD COLUMN tls_client_key TEXT;
ALTER TABLE receivers ADD COLUMN tls_ca_bundle TEXT;
ALTER TABLE receivers ADD COLUMN oauth2_token_url TEXT;
ALTER TABLE receivers ADD COLUMN oauth2_client_id TEXT;
ALTER TABLE receivers ADD COLUMN oauth2_client_secret TEXT;
ALTER TABLE receivers ADD COLUMN oauth2_scope TEXT;
-- Whether the receiver's requests carry a W3C `traceparent` header.
ALTER TABLE receivers ADD COLUMN send_traceparent BOOLEAN NOT NULL DEFAULT FALSE;
