-- energyctl store, schema version 4 (SQLite): deposit episodes and deposit addresses
-- added or removed at run time.
--
-- A deposit episode begins when a watched deposit address receives a token transfer and
-- ends when it is swept (or its rented energy runs out unused). Several deposits before
-- the sweep belong to one episode: at most one open episode per address (the unique
-- index), and each deposit is recorded once by its identity (`deposit_seen`), so a deposit
-- seen twice (a second replica, a re-read block, even after its episode closed) never opens
-- a second one, and never buys a second sweep's energy.

CREATE TABLE deposit_needs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    policy          TEXT    NOT NULL,
    address         TEXT    NOT NULL,
    token           TEXT    NOT NULL,
    deposit_txid    TEXT    NOT NULL,
    deposit_block   INTEGER NOT NULL CHECK (deposit_block >= 0),
    amount          TEXT    NOT NULL,   -- a uint256, as decimal text
    deposits        INTEGER NOT NULL DEFAULT 1 CHECK (deposits >= 1),
    state           TEXT    NOT NULL CHECK (state IN ('open', 'ordered', 'ready', 'closed')),
    energy          INTEGER CHECK (energy IS NULL OR energy > 0),
    client_order_id TEXT,
    note            TEXT,
    opened_at       REAL    NOT NULL,
    updated_at      REAL    NOT NULL,
    ready_at        REAL,
    notified_at     REAL,
    closed_at       REAL,
    close_reason    TEXT,
    CHECK ((state = 'closed') = (closed_at IS NOT NULL))
) STRICT;

CREATE UNIQUE INDEX deposit_needs_one_open ON deposit_needs (address) WHERE closed_at IS NULL;
CREATE INDEX deposit_needs_by_state ON deposit_needs (state, opened_at);
CREATE INDEX deposit_needs_by_address ON deposit_needs (address, opened_at);

-- The last block whose deposits a follower recorded, per follower (a replica's name): a
-- restarted sidecar reads on from there, so a deposit in a block produced while it was
-- down is still seen.
CREATE TABLE deposit_cursors (
    name        TEXT    PRIMARY KEY,
    block       INTEGER NOT NULL CHECK (block >= 0),
    updated_at  REAL    NOT NULL
) STRICT;

CREATE TABLE deposit_addresses (
    policy      TEXT    NOT NULL,
    address     TEXT    NOT NULL,
    present     INTEGER NOT NULL CHECK (present IN (0, 1)),
    changed_at  REAL    NOT NULL,
    PRIMARY KEY (policy, address)
) STRICT;

-- Each chain transfer recorded, by its identity (transaction id, the log's place in that
-- transaction), in the same transaction that opened or joined its episode: a transfer seen
-- again (a lagging replica, a block re-read after its episode closed) neither opens nor
-- joins one. Rows older than seven days are pruned as deposits are recorded.
CREATE TABLE deposit_seen (
    txid        TEXT    NOT NULL,
    log         INTEGER  NOT NULL CHECK (log >= 0),
    episode     INTEGER  REFERENCES deposit_needs (id),
    seen_at     REAL NOT NULL,
    PRIMARY KEY (txid, log)
) STRICT;

CREATE INDEX deposit_seen_by_time ON deposit_seen (seen_at);
