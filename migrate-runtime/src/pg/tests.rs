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
