-- The people we recruit. A recruit is known by their national ID number.
CREATE TABLE recruits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    first_name TEXT NOT NULL,
    surname TEXT NOT NULL,
    chat_name TEXT,
    github_name TEXT,
    id_number TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
