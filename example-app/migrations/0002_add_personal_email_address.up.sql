-- Expand: a required, unique email cannot be added in one step to a table
-- that already has rows. First add it nullable, so old and new code both work.
ALTER TABLE recruits ADD COLUMN personal_email_address TEXT;
