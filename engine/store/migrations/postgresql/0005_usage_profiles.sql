-- energyctl store, schema version 5 (PostgreSQL): usage profiles.
--
-- What the engine learned of each watched address's use (engine/core/usage.py): energy
-- used per hour of day, decaying over days, the largest recent burst and the last read.
-- One row per address, replaced after each pass that read it; replicas share it.
CREATE TABLE usage_profiles (
    address    TEXT PRIMARY KEY,
    profile    TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
