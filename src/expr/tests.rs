use super::*;
use serde_json::json;

fn vars(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn evaluates_comparisons_and_logic() {
    let v = vars(json!({"payment": {"amount": 1500}, "vip": true, "status": "open"}));
    for (text, expected) in [
        ("payment.amount > 1000", true),
        ("=payment.amount <= 1000", false),
        ("payment.amount == 1500.0", true),
        ("vip && status == 'open'", true),
        ("not vip or status != \"open\"", false),
        ("!(payment.amount < 10) && missing == null", true),
        ("status >= 'a'", true),
    ] {
        assert_eq!(Expr::parse(text).unwrap().eval(&v), Ok(expected), "{text}");
    }
}

#[test]
fn integers_compare_exactly() {
    let v = vars(json!({"id": 9007199254740993u64, "neg": -9007199254740993i64, "half": 2.5}));
    for (text, expected) in [
        // As doubles both are 2^53: this was true.
        ("9007199254740992 == 9007199254740993", false),
        ("id == 9007199254740992", false),
        ("id == 9007199254740993", true),
        ("id > 9007199254740992", true),
        ("neg < -9007199254740992", true),
        ("18446744073709551615 > 9223372036854775807", true),
        ("half > 2", true),
        ("half < 3", true),
        ("2 < half", true),
        ("1 == 1.0", true),
        ("id < 1e300", true),
    ] {
        assert_eq!(Expr::parse(text).unwrap().eval(&v), Ok(expected), "{text}");
    }
    let e = Expr::parse("id == 99999999999999999999999").unwrap_err();
    assert!(e.to_string().contains("64 bits"), "{e}");
}

#[test]
fn syntax_errors_name_the_column() {
    let e = Expr::parse("amount > > 3").unwrap_err();
    assert_eq!(e.column, 10, "{e}");
    let e = Expr::parse("amount = 3").unwrap_err();
    assert_eq!(e.column, 8, "{e}");
    let e = Expr::parse("(a == 1").unwrap_err();
    assert_eq!(e.column, 8, "{e}");
    let e = Expr::parse("a == 'x").unwrap_err();
    assert_eq!(e.column, 6, "{e}");
    assert!(Expr::parse("a < b < c").is_err());
    assert!(Expr::parse("").is_err());
}

#[test]
fn size_budget_is_enforced() {
    let long = format!("a == '{}'", "x".repeat(MAX_LEN));
    assert!(Expr::parse(&long)
        .unwrap_err()
        .message
        .contains("characters"));
    let many = vec!["a == 1"; 20].join(" && ");
    assert!(Expr::parse(&many).unwrap_err().message.contains("parts"));
    let deep = format!("{}a{}", "(".repeat(20), ")".repeat(20));
    assert!(Expr::parse(&deep).unwrap_err().message.contains("nests"));
}

#[test]
fn type_check_uses_declarations() {
    let declared: BTreeMap<String, Type> = [
        ("amount".to_string(), Type::Number),
        ("name".to_string(), Type::String),
        ("payment".to_string(), Type::Object),
    ]
    .into_iter()
    .collect();
    let check = |t: &str| Expr::parse(t).unwrap().check(&declared);
    assert!(check("amount > 1000 && payment.card.expired == true").is_ok());
    let e = check("amout > 1000").unwrap_err();
    assert!(e.message.contains("unknown variable `amout`"), "{e}");
    assert_eq!(e.column, 1);
    let e = check("name > 3").unwrap_err();
    assert!(e.message.contains("string with a number"), "{e}");
    assert!(check("amount").is_err());
    assert!(check("amount.x == 1").is_err());
    // Without declarations every path is untyped, but literals still are typed.
    let none = BTreeMap::new();
    assert!(Expr::parse("x > 1").unwrap().check(&none).is_ok());
    assert!(Expr::parse("1 == 'a'").unwrap().check(&none).is_err());
    assert!(Expr::parse("true < 1").unwrap().check(&none).is_err());
}

proptest::proptest! {
    /// Any text: parsed or refused with a column inside it, never a panic; whatever parses
    /// evaluates (to a value or an error) over any variables without a panic.
    #[test]
    fn arbitrary_text_is_parsed_or_refused_never_a_panic(
        text in "\\PC{0,80}|[a-z0-9 .()!<>=&|'\"-]{0,60}",
        n in proptest::num::f64::ANY,
        s in "\\PC{0,10}",
    ) {
        match Expr::parse(&text) {
            Ok(e) => {
                let vars = vars(json!({"a": n.is_finite().then_some(n), "b": s, "c": {"d": true}}));
                let _ = e.eval(&vars);
                let _ = e.check(&BTreeMap::new());
            }
            Err(err) => proptest::prop_assert!(err.column >= 1 && err.column <= text.chars().count() + 2),
        }
    }
}

#[test]
fn evaluation_errors_are_reported_not_guessed() {
    let v = vars(json!({"a": "x", "n": 1}));
    assert!(Expr::parse("a > 1").unwrap().eval(&v).is_err());
    assert!(Expr::parse("missing < 1").unwrap().eval(&v).is_err());
    assert!(Expr::parse("n").unwrap().eval(&v).is_err());
}
