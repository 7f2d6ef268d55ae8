-- Margin facts of a metrics row, so stored data keeps the ROI cost basis imported files carry: the gross
-- margin as a fraction of revenue and the cost of goods in minor units; NULL when the source did not report it.
ALTER TABLE marketing_metrics
  ADD COLUMN margin numeric(7, 6) CHECK (margin >= 0 AND margin <= 1),
  ADD COLUMN cost_of_goods_minor bigint CHECK (cost_of_goods_minor >= 0);
