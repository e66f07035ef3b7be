use super::*;

#[test]
fn lock_keys_differ_by_schema_and_table() {
    let a = lock_key("public._migrations");
    assert_eq!(a, lock_key("public._migrations"));
    assert_ne!(a, lock_key("app._migrations"));
    assert_ne!(a, lock_key("public.other"));
}

#[test]
fn literals_double_quotes() {
    assert_eq!(literal("it's"), "'it''s'");
}

/// The head's `regclass` names the tracking table only as one of the two
/// unqualified spellings the server prints; a qualified name (the table is
/// hidden on the `search_path`, or was moved), another name (renamed) or an
/// OID (dropped) does not.
#[test]
fn a_printed_regclass_names_the_table_only_unqualified() {
    use super::session::prints_as;
    assert!(prints_as("_migrations", "_migrations"));
    assert!(
        prints_as("\"_migrations\"", "_migrations"),
        "a keyword-like name the server quotes"
    );
    assert!(prints_as("\"Schema Migrations\"", "Schema Migrations"));
    assert!(prints_as("\"a\"\"b\"", "a\"b"));
    assert!(
        !prints_as("Schema Migrations", "Schema Migrations"),
        "never bare: it must be quoted"
    );
    assert!(!prints_as("public._migrations", "_migrations"));
    assert!(!prints_as("\"public\".\"_migrations\"", "_migrations"));
    assert!(!prints_as("old_migrations", "_migrations"));
    assert!(!prints_as("84456", "_migrations"));
    assert!(!prints_as("public.x", "public.x"), "a name with a dot prints quoted");
    assert!(prints_as("\"public.x\"", "public.x"));
    assert!(!prints_as("\"a\".\"b\"", "a\".\"b"), "one name's quotes are doubled");
}

/// The statistics' text is the one the server's `array_agg` printed in
/// earlier releases (`on {{111,15,4},{778,3,28}}` for these counts, read
/// from a PostgreSQL 15 server both ways), so their records still compare.
#[test]
fn live_stats_sums_each_pair_and_prints_as_the_server_did() {
    let cell = |s: &str| Some(s.to_owned());
    let track = vec![vec![cell("on")]];
    let counts = vec![
        ["100", "11", "15", "0", "4", "0"].map(cell).to_vec(),
        ["778", "0", "3", "0", "20", "8"].map(cell).to_vec(),
    ];
    assert_eq!(super::drift::live_stats(&track, &counts), "on {{111,15,4},{778,3,28}}");
    let odd = vec![["1", "x", "0", "0", "0", "0"].map(cell).to_vec()];
    assert_eq!(super::drift::live_stats(&track, &odd), "on {{?,0,0}}");
}
