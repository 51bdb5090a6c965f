-- energyctl store, schema version 1 (SQLite). Released migrations are never edited:
-- the migrator stores each file's checksum and refuses a database that disagrees.
-- STRICT tables: an INTEGER column refuses 1.5, so money cannot turn into a float.

CREATE TABLE orders (
    client_order_id   TEXT    PRIMARY KEY
                      CHECK (length(client_order_id) BETWEEN 1 AND 64),
    policy            TEXT    NOT NULL,
    address           TEXT    NOT NULL,
    provider          TEXT    NOT NULL,
    energy            INTEGER NOT NULL CHECK (energy > 0),
    duration          INTEGER NOT NULL CHECK (duration > 0),
    phase             TEXT    NOT NULL CHECK (phase IN (
                          'intent', 'submitted', 'delegating', 'unknown',
                          'delivered', 'partial', 'failed', 'refunded', 'abandoned')),
    -- Invariant 2: an open order holds a slot in [0, max_open); (address, open_slot) is
    -- unique among open orders. With max_open = 1 every open order takes slot 0, so the
    -- index below is exactly "one open order per address", whatever the Python does.
    open_slot         INTEGER CHECK (open_slot IS NULL OR (open_slot >= 0 AND open_slot < max_open)),
    max_open          INTEGER NOT NULL DEFAULT 1 CHECK (max_open >= 1),
    reserved_sun      INTEGER NOT NULL CHECK (reserved_sun >= 0),
    cost_sun          INTEGER CHECK (cost_sun IS NULL OR cost_sun >= 0),
    refund_sun        INTEGER CHECK (refund_sun IS NULL OR refund_sun >= 0),
    provider_order_id TEXT,
    receipt           TEXT,   -- JSON
    created_at        REAL    NOT NULL,
    updated_at        REAL    NOT NULL,
    deadline          REAL,
    attempts          INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error        TEXT,
    CHECK ((phase IN ('intent', 'submitted', 'delegating', 'unknown')) = (open_slot IS NOT NULL))
) STRICT;

CREATE UNIQUE INDEX orders_open_slot_unique ON orders (address, open_slot)
    WHERE open_slot IS NOT NULL;
CREATE INDEX orders_by_phase ON orders (phase, created_at);
CREATE INDEX orders_by_policy ON orders (policy, created_at);
CREATE INDEX orders_by_created ON orders (created_at);

-- Terminal phases are final, in the database too.
CREATE TRIGGER orders_terminal_is_final
BEFORE UPDATE OF phase ON orders
WHEN OLD.phase IN ('delivered', 'partial', 'failed', 'refunded', 'abandoned')
     AND NEW.phase IS NOT OLD.phase
BEGIN
    SELECT RAISE(ABORT, 'order phase is terminal: terminal phases are final');
END;

CREATE TABLE order_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    client_order_id TEXT    NOT NULL REFERENCES orders (client_order_id),
    from_phase      TEXT,
    to_phase        TEXT    NOT NULL,
    at              REAL    NOT NULL,
    detail          TEXT    NOT NULL DEFAULT '{}'   -- JSON
) STRICT;

CREATE INDEX order_events_by_order ON order_events (client_order_id, seq);

-- The spend ledger: signed entries whose sum per window is what the window spent.
-- booked_at is the order's created_at, so a settlement lands in its reservation's window.
CREATE TABLE ledger_entries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    client_order_id TEXT    NOT NULL REFERENCES orders (client_order_id),
    policy          TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('reserve', 'release', 'settle', 'refund')),
    amount_sun      INTEGER NOT NULL,
    booked_at       REAL    NOT NULL,
    recorded_at     REAL    NOT NULL
) STRICT;

CREATE INDEX ledger_by_window ON ledger_entries (policy, booked_at);
CREATE INDEX ledger_by_booked ON ledger_entries (booked_at);
CREATE INDEX ledger_by_order ON ledger_entries (client_order_id);

-- History and ledger are append-only.
CREATE TRIGGER order_events_no_update BEFORE UPDATE ON order_events
BEGIN
    SELECT RAISE(ABORT, 'order_events is append-only');
END;
CREATE TRIGGER order_events_no_delete BEFORE DELETE ON order_events
BEGIN
    SELECT RAISE(ABORT, 'order_events is append-only');
END;
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger_entries is append-only');
END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger_entries is append-only');
END;

CREATE TABLE provider_health (
    provider             TEXT    PRIMARY KEY,
    consecutive_failures INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    last_failure_at      REAL,
    last_success_at      REAL,
    last_reason          TEXT
) STRICT;

CREATE TABLE policy_revisions (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    digest         TEXT    NOT NULL,
    source_summary TEXT    NOT NULL,
    applied_at     REAL    NOT NULL,
    applied_by     TEXT    NOT NULL
) STRICT;

CREATE TABLE leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    token       INTEGER NOT NULL CHECK (token >= 1),
    acquired_at REAL    NOT NULL,
    expires_at  REAL    NOT NULL
) STRICT;
