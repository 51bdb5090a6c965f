-- Orders by their last change: a pass asks which addresses' orders changed since its
-- oldest reading (OrderFilter.updated_since), and never buys on a reading older than that.
CREATE INDEX orders_by_updated ON orders (updated_at);
