-- energyctl store, schema version 1 (PostgreSQL): the same tables, columns and rules as
-- migrations/sqlite/0001_initial.sql. Released migrations are never edited: the migrator
-- stores each file's checksum and refuses a database that disagrees.
-- Money and energy are BIGINT (never a float); times are float8 epoch seconds written
-- from the store's Clock, like SQLite's REAL.

CREATE TABLE orders (
    client_order_id   TEXT    PRIMARY KEY
                      CHECK (length(client_order_id) BETWEEN 1 AND 64),
    policy            TEXT    NOT NULL,
    address           TEXT    NOT NULL,
    provider          TEXT    NOT NULL,
    energy            BIGINT  NOT NULL CHECK (energy > 0),
    duration          BIGINT  NOT NULL CHECK (duration > 0),
    phase             TEXT    NOT NULL CHECK (phase IN (
                          'intent', 'submitted', 'delegating', 'unknown',
                          'delivered', 'partial', 'failed', 'refunded', 'abandoned')),
    -- Invariant 2: an open order holds a slot in [0, max_open); (address, open_slot) is
    -- unique among open orders. With max_open = 1 every open order takes slot 0, so the
    -- index below is exactly "one open order per address", whatever the Python does and
    -- whichever replica writes.
    open_slot         INTEGER CHECK (open_slot IS NULL OR (open_slot >= 0 AND open_slot < max_open)),
    max_open          INTEGER NOT NULL DEFAULT 1 CHECK (max_open >= 1),
    reserved_sun      BIGINT  NOT NULL CHECK (reserved_sun >= 0),
    cost_sun          BIGINT  CHECK (cost_sun IS NULL OR cost_sun >= 0),
    refund_sun        BIGINT  CHECK (refund_sun IS NULL OR refund_sun >= 0),
    provider_order_id TEXT,
    receipt           JSONB,
    created_at        DOUBLE PRECISION NOT NULL,
    updated_at        DOUBLE PRECISION NOT NULL,
    deadline          DOUBLE PRECISION,
    attempts          INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error        TEXT,
    CONSTRAINT orders_slot_matches_phase CHECK (
        (phase IN ('intent', 'submitted', 'delegating', 'unknown')) = (open_slot IS NOT NULL))
);

CREATE UNIQUE INDEX orders_open_slot_unique ON orders (address, open_slot)
    WHERE open_slot IS NOT NULL;
CREATE INDEX orders_by_phase ON orders (phase, created_at);
CREATE INDEX orders_by_policy ON orders (policy, created_at);
CREATE INDEX orders_by_created ON orders (created_at);

-- Terminal phases are final, in the database too.
CREATE FUNCTION orders_terminal_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'order phase is terminal: terminal phases are final'
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER orders_terminal_is_final
BEFORE UPDATE OF phase ON orders
FOR EACH ROW
WHEN (OLD.phase IN ('delivered', 'partial', 'failed', 'refunded', 'abandoned')
      AND NEW.phase IS DISTINCT FROM OLD.phase)
EXECUTE FUNCTION orders_terminal_is_final();

CREATE TABLE order_events (
    seq             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_order_id TEXT    NOT NULL REFERENCES orders (client_order_id),
    from_phase      TEXT,
    to_phase        TEXT    NOT NULL,
    at              DOUBLE PRECISION NOT NULL,
    detail          JSONB   NOT NULL DEFAULT '{}'
);

CREATE INDEX order_events_by_order ON order_events (client_order_id, seq);

-- The spend ledger: signed entries whose sum per window is what the window spent.
-- booked_at is the order's created_at, so a settlement lands in its reservation's window.
CREATE TABLE ledger_entries (
    seq             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_order_id TEXT    NOT NULL REFERENCES orders (client_order_id),
    policy          TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('reserve', 'release', 'settle', 'refund')),
    amount_sun      BIGINT  NOT NULL,
    booked_at       DOUBLE PRECISION NOT NULL,
    recorded_at     DOUBLE PRECISION NOT NULL
);

CREATE INDEX ledger_by_window ON ledger_entries (policy, booked_at);
CREATE INDEX ledger_by_booked ON ledger_entries (booked_at);
CREATE INDEX ledger_by_order ON ledger_entries (client_order_id);

-- History and ledger are append-only.
CREATE FUNCTION energyctl_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER order_events_append_only BEFORE UPDATE OR DELETE ON order_events
    FOR EACH ROW EXECUTE FUNCTION energyctl_append_only();
CREATE TRIGGER order_events_no_truncate BEFORE TRUNCATE ON order_events
    FOR EACH STATEMENT EXECUTE FUNCTION energyctl_append_only();
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION energyctl_append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION energyctl_append_only();

CREATE TABLE provider_health (
    provider             TEXT    PRIMARY KEY,
    consecutive_failures INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    last_failure_at      DOUBLE PRECISION,
    last_success_at      DOUBLE PRECISION,
    last_reason          TEXT
);

CREATE TABLE policy_revisions (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest         TEXT    NOT NULL,
    source_summary TEXT    NOT NULL,
    applied_at     DOUBLE PRECISION NOT NULL,
    applied_by     TEXT    NOT NULL
);

-- Leases: how replicas share work. Rows are kept on release so the fencing token keeps
-- increasing; taking an expired lease is one atomic INSERT ... ON CONFLICT DO UPDATE.
CREATE TABLE leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    token       BIGINT  NOT NULL CHECK (token >= 1),
    acquired_at DOUBLE PRECISION NOT NULL,
    expires_at  DOUBLE PRECISION NOT NULL
);
