-- Migrate: give every existing recruit an address. Real addresses are asked
-- for later; the placeholder is unique per recruit and easy to find.
UPDATE recruits
SET personal_email_address = 'recruit-' || id || '@placeholder.invalid'
WHERE personal_email_address IS NULL;
