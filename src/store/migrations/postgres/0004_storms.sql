-- Storm handling: near-identical mentions attach to one case ("+N similar").
ALTER TABLE cases ADD COLUMN fingerprint BIGINT;
ALTER TABLE cases ADD COLUMN similar_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN similar_noted_at BIGINT;
