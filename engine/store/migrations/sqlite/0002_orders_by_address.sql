-- energyctl store, schema version 2 (SQLite): each address's orders by time, so the newest
-- order of an address (`Store.last_orders`, the policy cooldowns) is one index lookup
-- however many orders the cooldown window holds.

CREATE INDEX orders_by_address ON orders (address, created_at, client_order_id);
