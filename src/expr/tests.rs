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

#[test]
fn feel_arithmetic_functions_and_dates_evaluate() {
    let now = chrono::DateTime::parse_from_rfc3339("2026-05-01T08:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let v = vars(json!({
        "items": [{"p": 1}, {"p": 2}, {"p": 3}],
        "prices": [10, 20.5, 3],
        "qty": [1, 2, 3],
        "name": "Anna Meier",
        "country": "de",
        "amount": 1200,
        "placed": "2026-04-10T09:30:00Z",
        "due": "2026-05-20",
        "tags": ["vip", "b2b"],
        "nothing": null
    }));
    for (text, expected) in [
        ("count(items) > 2", true),
        ("count(items) == 3", true),
        ("sum(qty) == 6", true),
        ("sum(prices) > 33.4 and sum(prices) < 33.6", true),
        ("min(qty) == 1 and max(qty) == 3", true),
        ("amount * 2 - 400 == 2000", true),
        ("amount / 3 == 400", true),
        ("amount / 7 > 171.4", true),
        ("-amount < 0", true),
        ("amount - 200 >= 1000", true),
        ("(amount + 1) * 2 == 2402", true),
        ("name + \"!\" == \"Anna Meier!\"", true),
        (
            "starts with(name, \"Anna\") and ends with(name, \"Meier\")",
            true,
        ),
        ("contains(name, \"na M\")", true),
        ("upper case(country) == \"DE\"", true),
        ("lower case(\"ABC\") == \"abc\"", true),
        ("string length(name) == 10", true),
        ("string(amount) == \"1200\"", true),
        ("number(\"42\") == 42", true),
        ("number(\"4.5\") > 4", true),
        ("is defined(nothing) and not(is defined(missing))", true),
        ("list contains(tags, \"vip\")", true),
        ("list contains([1, 2, 3], 2.0)", true),
        (
            "abs(-3) == 3 and floor(2.7) == 2 and ceiling(2.1) == 3",
            true,
        ),
        ("now() > date and time(placed)", true),
        ("date and time(placed) + duration(\"P30D\") > now()", true),
        ("now() - date and time(placed) > duration(\"P20D\")", true),
        ("now() - date and time(placed) < duration(\"P21D\")", true),
        ("today() == date(\"2026-05-01\")", true),
        ("date(due) - today() == duration(\"P19D\")", true),
        ("today() + duration(\"P1D\") == date(\"2026-05-02\")", true),
        ("placed < now()", true),
        ("duration(\"PT1H\") * 2 == duration(\"PT2H\")", true),
        ("string(duration(\"P1DT2H\")) == \"P1DT2H\"", true),
        ("nothing + 1 == null", true),
    ] {
        let e = Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(e.eval_at(&v, now), Ok(expected), "{text}");
    }
}

#[test]
fn feel_mistakes_are_named_where_they_are() {
    let e = Expr::parse("counts(items) > 3").unwrap_err();
    assert!(e.message.contains("`counts` is not a function"), "{e}");
    let e = Expr::parse("starts with(name) == true").unwrap_err();
    assert!(e.message.contains("takes 2 arguments, not 1"), "{e}");
    assert_eq!(e.column, 1);
    let e = Expr::parse("count(items, 2)").unwrap_err();
    assert!(e.message.contains("takes 1 argument, not 2"), "{e}");
    // No loops.
    assert!(Expr::parse("sum(for i in items return i.p) > 3").is_err());
    // Run-time errors name their column; now() without a clock says so.
    let v = vars(json!({"name": "x", "n": 0}));
    let e = Expr::parse("upper case(n) == \"X\"")
        .unwrap()
        .eval(&v)
        .unwrap_err();
    assert!(e.message.contains("needs text"), "{e}");
    let e = Expr::parse("now() > 1").unwrap().eval(&v).unwrap_err();
    assert!(e.message.contains("clock"), "{e}");
    let e = Expr::parse("10 / n > 1").unwrap().eval(&v).unwrap_err();
    assert!(e.message.contains("division by zero"), "{e}");
    // Types are checked at deploy where variables are declared.
    let declared: BTreeMap<String, Type> = [("vip".to_string(), Type::Boolean)].into();
    let e = Expr::parse("vip + 1 > 2")
        .unwrap()
        .check(&declared)
        .unwrap_err();
    assert!(e.message.contains("not a boolean"), "{e}");
    assert!(Expr::parse("count(vip) > 2")
        .unwrap()
        .check(&declared)
        .is_ok());
    // A name with a dash is still a name; subtraction needs spaces.
    let v = vars(json!({"order-id": 5, "a": 3, "b": 1}));
    assert_eq!(Expr::parse("order-id == 5").unwrap().eval(&v), Ok(true));
    assert_eq!(Expr::parse("a - b == 2").unwrap().eval(&v), Ok(true));
    assert_eq!(Expr::parse("a -1 == 2").unwrap().eval(&v), Ok(true));
}
