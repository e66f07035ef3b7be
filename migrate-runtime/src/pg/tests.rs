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
