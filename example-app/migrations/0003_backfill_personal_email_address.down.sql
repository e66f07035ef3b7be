-- Undo only what the backfill wrote; addresses entered since stay.
UPDATE recruits
SET personal_email_address = NULL
WHERE personal_email_address = 'recruit-' || id || '@placeholder.invalid';
