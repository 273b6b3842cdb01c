-- +goose Up
-- The W3C traceparent of the span that created (or revived) a delivery:
-- every attempt's span is its child, retries included.
ALTER TABLE deliveries ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE deliveries DROP COLUMN traceparent;
