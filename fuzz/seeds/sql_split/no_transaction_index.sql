-- deckhand:no-transaction
-- Built without blocking writes; IF NOT EXISTS makes a re-run after a failure safe.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_user_id ON orders (user_id);
