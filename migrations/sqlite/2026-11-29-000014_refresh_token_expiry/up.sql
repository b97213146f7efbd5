-- Expired refresh tokens are deleted by the periodic purge (token::store::purge_expired), also
-- those of families still in use: a family refreshed for months would otherwise keep every
-- token it ever rotated. This index makes that delete cheap.
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);
