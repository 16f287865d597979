-- Starts of a large message's send since its last outcome (issue 15): a message whose send takes
-- the replica down is parked with an error once this passes GMP_MAX_STARTS_WITHOUT_OUTCOME,
-- instead of taking down every replica that claims it after it, forever.
ALTER TABLE messages ADD COLUMN starts_without_outcome BIGINT NOT NULL DEFAULT 0;
