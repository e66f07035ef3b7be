ALTER TABLE recruits DROP COLUMN personal_email_address;
