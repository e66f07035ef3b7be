DROP TABLE recruits;
