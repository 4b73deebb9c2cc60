//! The expression lexer and the recursive-descent parser, bounded in length, nodes and depth.

use serde_json::Value;

use super::*;

/// Parse an expression's characters (length already checked).
pub(super) fn parse(chars: &[char]) -> Result<Expr, ExprError> {
    let tokens = lex(chars)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        nodes: 0,
        end: chars.len() + 1,
    };
    if p.peek() == Some(&Tok::Assign) {
        p.pos += 1;
    }
    if p.peek().is_none() {
        return err(1, "the expression is empty");
    }
    let e = p.or(0)?;
    if let Some((_, col)) = p.tokens.get(p.pos) {
        return err(*col, "unexpected text after the end of the expression");
    }
    Ok(e)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(Value),
    Ident(String),
    Cmp(CmpOp),
    And,
    Or,
    Not,
    Open,
    Close,
    Assign,
    Arith(ArithOp),
    Comma,
    OpenList,
    CloseList,
    Func(Func),
}

/// Whether a token ends an operand (so a `-` after it subtracts).
fn ends_operand(t: Option<&(Tok, usize)>) -> bool {
    matches!(
        t,
        Some((Tok::Lit(_) | Tok::Ident(_) | Tok::Close | Tok::CloseList, _))
    )
}

/// The built-in function whose name starts at `chars[i..]` and is followed by `(`, and how
/// many characters its name takes (words of a name may be separated by any white space).
fn function_at(chars: &[char], i: usize) -> Option<(Func, usize)> {
    for (f, name, _) in Func::ALL {
        let mut j = i;
        let mut ok = true;
        for (k, word) in name.split(' ').enumerate() {
            if k > 0 {
                let start = j;
                while chars.get(j).is_some_and(|c| c.is_whitespace()) {
                    j += 1;
                }
                if j == start {
                    ok = false;
                    break;
                }
            }
            for w in word.chars() {
                if chars.get(j) != Some(&w) {
                    ok = false;
                    break;
                }
                j += 1;
            }
            if !ok {
                break;
            }
        }
        if !ok
            || chars
                .get(j)
                .is_some_and(|c| c.is_alphanumeric() || *c == '_')
        {
            continue;
        }
        let mut k = j;
        while chars.get(k).is_some_and(|c| c.is_whitespace()) {
            k += 1;
        }
        if chars.get(k) == Some(&'(') {
            return Some((f, j - i));
        }
    }
    None
}

fn lex(chars: &[char]) -> Result<Vec<(Tok, usize)>, ExprError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        let two = |s: &str| chars[i..].iter().take(2).collect::<String>() == s;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let (tok, len) = if two("==") {
            (Tok::Cmp(CmpOp::Eq), 2)
        } else if two("!=") {
            (Tok::Cmp(CmpOp::Ne), 2)
        } else if two("<=") {
            (Tok::Cmp(CmpOp::Le), 2)
        } else if two(">=") {
            (Tok::Cmp(CmpOp::Ge), 2)
        } else if two("&&") {
            (Tok::And, 2)
        } else if two("||") {
            (Tok::Or, 2)
        } else {
            match c {
                '<' => (Tok::Cmp(CmpOp::Lt), 1),
                '>' => (Tok::Cmp(CmpOp::Gt), 1),
                '!' => (Tok::Not, 1),
                '(' => (Tok::Open, 1),
                ')' => (Tok::Close, 1),
                '[' => (Tok::OpenList, 1),
                ']' => (Tok::CloseList, 1),
                ',' => (Tok::Comma, 1),
                '+' => (Tok::Arith(ArithOp::Add), 1),
                '*' => (Tok::Arith(ArithOp::Mul), 1),
                '/' => (Tok::Arith(ArithOp::Div), 1),
                '-' if ends_operand(out.last())
                    || !chars
                        .get(i + 1)
                        .is_some_and(|c| c.is_ascii_digit() || *c == '.') =>
                {
                    (Tok::Arith(ArithOp::Sub), 1)
                }
                '=' if out.is_empty() => (Tok::Assign, 1),
                '=' => return err(col, "`=` is not an operator here; compare with `==`"),
                '"' | '\'' => {
                    let mut s = String::new();
                    let mut j = i + 1;
                    loop {
                        match chars.get(j) {
                            None => return err(col, "this string is not closed"),
                            Some('\\') => match chars.get(j + 1) {
                                Some(&e @ ('"' | '\'' | '\\')) => {
                                    s.push(e);
                                    j += 2;
                                }
                                Some('n') => {
                                    s.push('\n');
                                    j += 2;
                                }
                                _ => return err(j + 1, "unknown escape in string"),
                            },
                            Some(&q) if q == c => break,
                            Some(&x) => {
                                s.push(x);
                                j += 1;
                            }
                        }
                    }
                    (Tok::Lit(Value::String(s)), j + 1 - i)
                }
                '0'..='9' | '-' | '.' => {
                    let mut j = i + 1;
                    while j < chars.len()
                        && (chars[j].is_ascii_digit()
                            || matches!(chars[j], '.' | 'e' | 'E')
                            || (matches!(chars[j], '+' | '-') && matches!(chars[j - 1], 'e' | 'E')))
                    {
                        j += 1;
                    }
                    let text: String = chars[i..j].iter().collect();
                    let integer = !text.contains(['.', 'e', 'E']);
                    let n = if integer {
                        // Integers stay integers, compared exactly (as doubles, 2^53 + 1 would
                        // equal 2^53).
                        match text.parse::<i64>() {
                            Ok(i) => serde_json::Number::from(i),
                            Err(_) => match text.parse::<u64>() {
                                Ok(u) => serde_json::Number::from(u),
                                Err(_) => {
                                    return err(
                                        col,
                                        format!("`{text}` is not an integer that fits in 64 bits"),
                                    )
                                }
                            },
                        }
                    } else {
                        let f: f64 = match text.parse() {
                            Ok(n) => n,
                            Err(_) => return err(col, format!("`{text}` is not a number")),
                        };
                        match serde_json::Number::from_f64(f) {
                            Some(n) => n,
                            None => return err(col, format!("`{text}` is not a finite number")),
                        }
                    };
                    (Tok::Lit(Value::Number(n)), j - i)
                }
                c if (c.is_alphabetic() || c == '_') && function_at(chars, i).is_some() => {
                    let (f, len) = function_at(chars, i).expect("checked");
                    (Tok::Func(f), len)
                }
                c if c.is_alphabetic() || c == '_' => {
                    let mut j = i + 1;
                    while j < chars.len()
                        && (chars[j].is_alphanumeric() || matches!(chars[j], '_' | '.' | '-'))
                    {
                        j += 1;
                    }
                    let word: String = chars[i..j].iter().collect();
                    if word.ends_with('.') || word.contains("..") {
                        return err(col, format!("`{word}` is not a variable path"));
                    }
                    let tok = match word.as_str() {
                        "true" => Tok::Lit(Value::Bool(true)),
                        "false" => Tok::Lit(Value::Bool(false)),
                        "null" => Tok::Lit(Value::Null),
                        "and" => Tok::And,
                        "or" => Tok::Or,
                        "not" => Tok::Not,
                        _ => Tok::Ident(word),
                    };
                    (tok, j - i)
                }
                other => return err(col, format!("unexpected character `{other}`")),
            }
        };
        out.push((tok, col));
        i += len;
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(Tok, usize)>,
    pos: usize,
    nodes: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn col(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(_, c)| *c)
    }

    fn node(&mut self, depth: usize) -> Result<(), ExprError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return err(
                self.col(),
                format!("the expression has more than {MAX_NODES} parts"),
            );
        }
        if depth > MAX_DEPTH {
            return err(
                self.col(),
                format!("the expression nests deeper than {MAX_DEPTH}"),
            );
        }
        Ok(())
    }

    fn or(&mut self, depth: usize) -> Result<Expr, ExprError> {
        let mut left = self.and(depth)?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            self.node(depth)?;
            let right = self.and(depth)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, ExprError> {
        let mut left = self.cmp(depth)?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            self.node(depth)?;
            let right = self.cmp(depth)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn cmp(&mut self, depth: usize) -> Result<Expr, ExprError> {
        let left = self.add(depth)?;
        if let Some(Tok::Cmp(op)) = self.peek().cloned() {
            let col = self.col();
            self.pos += 1;
            self.node(depth)?;
            let right = self.add(depth)?;
            if let Some(Tok::Cmp(_)) = self.peek() {
                return err(self.col(), "comparisons do not chain; join them with `&&`");
            }
            return Ok(Expr::Cmp(op, Box::new(left), Box::new(right), col));
        }
        Ok(left)
    }

    /// `a + b`, `a - b` (left to right), over products.
    fn add(&mut self, depth: usize) -> Result<Expr, ExprError> {
        let mut left = self.mul(depth)?;
        while let Some(Tok::Arith(op @ (ArithOp::Add | ArithOp::Sub))) = self.peek().cloned() {
            let col = self.col();
            self.pos += 1;
            self.node(depth)?;
            let right = self.mul(depth)?;
            left = Expr::Arith(op, Box::new(left), Box::new(right), col);
        }
        Ok(left)
    }

    /// `a * b`, `a / b` (left to right).
    fn mul(&mut self, depth: usize) -> Result<Expr, ExprError> {
        let mut left = self.unary(depth)?;
        while let Some(Tok::Arith(op @ (ArithOp::Mul | ArithOp::Div))) = self.peek().cloned() {
            let col = self.col();
            self.pos += 1;
            self.node(depth)?;
            let right = self.unary(depth)?;
            left = Expr::Arith(op, Box::new(left), Box::new(right), col);
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, ExprError> {
        let col = self.col();
        self.node(depth)?;
        match self.tokens.get(self.pos).cloned() {
            Some((Tok::Not, _)) => {
                self.pos += 1;
                let e = self.unary(depth + 1)?;
                Ok(Expr::Not(Box::new(e), col))
            }
            Some((Tok::Arith(ArithOp::Sub), _)) => {
                self.pos += 1;
                let e = self.unary(depth + 1)?;
                Ok(Expr::Neg(Box::new(e), col))
            }
            Some((Tok::Open, _)) => {
                self.pos += 1;
                let e = self.or(depth + 1)?;
                self.expect(Tok::Close, "`)`")?;
                Ok(e)
            }
            Some((Tok::OpenList, _)) => {
                self.pos += 1;
                let items = self.items(depth, Tok::CloseList, "`]`")?;
                Ok(Expr::List(items, col))
            }
            Some((Tok::Func(f), _)) => {
                self.pos += 1;
                self.expect(Tok::Open, "`(`")?;
                let args = self.items(depth, Tok::Close, "`)`")?;
                if args.len() != f.arity() {
                    return err(
                        col,
                        format!(
                            "`{}` takes {} argument{}, not {}",
                            f.name(),
                            f.arity(),
                            if f.arity() == 1 { "" } else { "s" },
                            args.len()
                        ),
                    );
                }
                Ok(Expr::Call(f, args, col))
            }
            Some((Tok::Lit(v), _)) => {
                self.pos += 1;
                Ok(Expr::Lit(v, col))
            }
            Some((Tok::Ident(p), _)) => {
                self.pos += 1;
                if self.peek() == Some(&Tok::Open) {
                    return err(
                        col,
                        format!("`{p}` is not a function longrun has (no user-defined functions)"),
                    );
                }
                Ok(Expr::Path(p, col))
            }
            Some(_) => err(col, "expected a value, a variable or `(`"),
            None => err(col, "the expression ends too early"),
        }
    }

    /// Expressions separated by commas up to `close` (already past the opening token).
    fn items(&mut self, depth: usize, close: Tok, what: &str) -> Result<Vec<Expr>, ExprError> {
        let mut items = Vec::new();
        if self.peek() == Some(&close) {
            self.pos += 1;
            return Ok(items);
        }
        loop {
            items.push(self.or(depth + 1)?);
            match self.peek() {
                Some(Tok::Comma) => self.pos += 1,
                Some(t) if *t == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                _ => return err(self.col(), format!("expected `,` or {what}")),
            }
        }
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), ExprError> {
        if self.peek() != Some(&tok) {
            return err(self.col(), format!("expected {what}"));
        }
        self.pos += 1;
        Ok(())
    }
}
