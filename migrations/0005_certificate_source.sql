-- Where the certificate dcvd manages came from: NULL while none is issued, 'ordered'
-- (issued_order_id names dcvd's order), 'adopted' (found valid in output_dir before dcvd
-- ordered anything for it; serial, issuer and not_after describe it).
ALTER TABLE certificates ADD COLUMN source TEXT;
ALTER TABLE certificates ADD COLUMN serial TEXT;
ALTER TABLE certificates ADD COLUMN issuer TEXT;
UPDATE certificates SET source = 'ordered' WHERE issued_order_id IS NOT NULL;
-- Why dcvd places no order for this certificate until the operator acts: its output_dir
-- holds a certificate it cannot adopt and will not overwrite on a guess (key mismatch,
-- unreadable, ...), or cannot be written (the certificate would be bought and never
-- installed). NULL otherwise; cleared once the cause is gone.
ALTER TABLE certificates ADD COLUMN hold TEXT;
