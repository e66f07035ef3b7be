-- Contract: SQLite cannot add NOT NULL to a column, so the table is rebuilt
-- (https://sqlite.org/lang_altertable.html#otheralter). The runner turns
-- foreign keys off around it and checks them before commit.
CREATE TABLE recruits_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    first_name TEXT NOT NULL,
    surname TEXT NOT NULL,
    chat_name TEXT,
    github_name TEXT,
    id_number TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    personal_email_address TEXT NOT NULL
);
INSERT INTO recruits_new
    (id, first_name, surname, chat_name, github_name, id_number, created_at, personal_email_address)
SELECT id, first_name, surname, chat_name, github_name, id_number, created_at, personal_email_address
FROM recruits;
DROP TABLE recruits;
ALTER TABLE recruits_new RENAME TO recruits;
CREATE UNIQUE INDEX recruits_personal_email_address ON recruits (personal_email_address);
