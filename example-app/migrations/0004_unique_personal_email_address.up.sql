-- Fails, and is rolled back, if two recruits share an address: fix the data first.
CREATE UNIQUE INDEX recruits_personal_email_address ON recruits (personal_email_address);
