-- energyctl store, schema version 4 (PostgreSQL): deposit episodes and deposit addresses
-- added or removed at run time (the same tables as the SQLite migration of this number).
--
-- At most one open episode per address (the unique index), and each deposit recorded once
-- by its identity (`deposit_seen`): a deposit seen twice (a second replica, a re-read
-- block, even after its episode closed) never opens a second one.

CREATE TABLE deposit_needs (
    id              BIGSERIAL PRIMARY KEY,
    policy          TEXT    NOT NULL,
    address         TEXT    NOT NULL,
    token           TEXT    NOT NULL,
    deposit_txid    TEXT    NOT NULL,
    deposit_block   BIGINT  NOT NULL CHECK (deposit_block >= 0),
    amount          TEXT    NOT NULL,
    deposits        INTEGER NOT NULL DEFAULT 1 CHECK (deposits >= 1),
    state           TEXT    NOT NULL CHECK (state IN ('open', 'ordered', 'ready', 'closed')),
    energy          BIGINT  CHECK (energy IS NULL OR energy > 0),
    client_order_id TEXT,
    note            TEXT,
    opened_at       DOUBLE PRECISION NOT NULL,
    updated_at      DOUBLE PRECISION NOT NULL,
    ready_at        DOUBLE PRECISION,
    notified_at     DOUBLE PRECISION,
    closed_at       DOUBLE PRECISION,
    close_reason    TEXT,
    CHECK ((state = 'closed') = (closed_at IS NOT NULL))
);

CREATE UNIQUE INDEX deposit_needs_one_open ON deposit_needs (address) WHERE closed_at IS NULL;
CREATE INDEX deposit_needs_by_state ON deposit_needs (state, opened_at);
CREATE INDEX deposit_needs_by_address ON deposit_needs (address, opened_at);

-- The last block whose deposits a follower recorded, per follower (a replica's name).
CREATE TABLE deposit_cursors (
    name        TEXT    PRIMARY KEY,
    block       BIGINT  NOT NULL CHECK (block >= 0),
    updated_at  DOUBLE PRECISION NOT NULL
);

CREATE TABLE deposit_addresses (
    policy      TEXT    NOT NULL,
    address     TEXT    NOT NULL,
    present     BOOLEAN NOT NULL,
    changed_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (policy, address)
);

-- Each chain transfer recorded, by its identity (transaction id, the log's place in that
-- transaction), in the same transaction that opened or joined its episode: a transfer seen
-- again (a lagging replica, a block re-read after its episode closed) neither opens nor
-- joins one. Rows older than seven days are pruned as deposits are recorded.
CREATE TABLE deposit_seen (
    txid        TEXT    NOT NULL,
    log         BIGINT  NOT NULL CHECK (log >= 0),
    episode     BIGINT  REFERENCES deposit_needs (id),
    seen_at     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (txid, log)
);

CREATE INDEX deposit_seen_by_time ON deposit_seen (seen_at);
