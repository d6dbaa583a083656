-- An operator paused the certificate (`dcvd pause`, or `dcvd orders cancel` of its live
-- order): dcvd places no new order and no renewal for it until `dcvd resume`. A live
-- order continues. NULL when not paused.
ALTER TABLE certificates ADD COLUMN paused_at INTEGER;
ALTER TABLE certificates ADD COLUMN paused_reason TEXT;
