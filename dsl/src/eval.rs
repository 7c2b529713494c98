//! The evaluator: computes checked expressions and renders checked templates.
//!
//! Pure and total: it reads values only through an [`Env`], takes the clock as a number, never
//! panics, and bounds its work — every step spends fuel from a budget ([`Limits`]) and no value it
//! builds grows past [`MAX_VALUE_BYTES`]. Values that do not match the static type (possible only
//! for `any`-typed data) give an [`EvalError`] with the location of the sub-expression.

use std::sync::Arc;

use crate::expr::{BinOp, UnOp};
use crate::ir::{Expr, ExprKind, InputId, Part, StageId, Template};
use crate::span::Loc;
use crate::types::{Item, Value};

/// The largest text or rendered template an evaluation may produce, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// What an evaluation may see.
pub trait Env {
    fn input(&self, id: InputId) -> Option<&Value>;
    fn stage_output(&self, stage: StageId, port: u32) -> Option<&Value>;
    /// The pipeline's output, for tests' `expect`.
    fn test_output(&self) -> Option<&Value> {
        None
    }
}

/// Bounds on one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Steps (nodes visited, loop iterations, list elements built) before giving up.
    pub fuel: u64,
    /// The clock, in seconds since the Unix epoch, for `days_since`.
    pub now: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { fuel: 1_000_000, now: 0.0 }
    }
}

/// Why an evaluation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("`{function}` expects {expected} as argument {}, got {found}", index + 1)]
    BadArgument { function: &'static str, index: usize, expected: &'static str, found: &'static str },
    #[error("`{text}` is not a number")]
    NotANumber { text: String },
    #[error("`{function}` gave a number that is not finite")]
    NotFinite { function: &'static str },
    #[error("`{op}` cannot be applied to {found}")]
    BadOperand { op: &'static str, found: &'static str },
    #[error("division by zero")]
    DivisionByZero,
    #[error("a value grew past {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the evaluation ran out of its step budget")]
    OutOfFuel,
    #[error("{what} is not available")]
    Unavailable { what: String },
}

/// An error and the location of the expression that raised it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}")]
pub struct Failure {
    pub error: EvalError,
    pub loc: Loc,
}

/// Evaluates `expr`; `locals` are the values of [`crate::ir::LocalId`] 0, 1, …
pub fn eval_expr(expr: &Expr, env: &dyn Env, locals: &[Value], limits: Limits) -> Result<Value, Failure> {
    let mut ev = Evaluator { env, limits, fuel: limits.fuel, locals: locals.to_vec() };
    ev.expr(expr)
}

/// Evaluates an item filter (`item` is local 0) for one item.
pub fn eval_filter(expr: &Expr, env: &dyn Env, item: &Arc<Item>, limits: Limits) -> Result<bool, Failure> {
    match eval_expr(expr, env, &[Value::Item(Arc::clone(item))], limits)? {
        Value::Bool(b) => Ok(b),
        other => Err(Failure { error: EvalError::BadOperand { op: "where", found: other.kind_name() }, loc: expr.loc }),
    }
}

/// Renders a template to text.
pub fn render_template(template: &Template, env: &dyn Env, limits: Limits) -> Result<String, Failure> {
    let mut ev = Evaluator { env, limits, fuel: limits.fuel, locals: Vec::new() };
    let mut out = String::new();
    ev.parts(&template.parts, &mut out)?;
    Ok(out)
}

struct Evaluator<'e> {
    env: &'e dyn Env,
    limits: Limits,
    fuel: u64,
    locals: Vec<Value>,
}

impl Evaluator<'_> {
    fn spend(&mut self, steps: u64, loc: Loc) -> Result<(), Failure> {
        self.fuel = self.fuel.checked_sub(steps).ok_or(Failure { error: EvalError::OutOfFuel, loc })?;
        Ok(())
    }

    fn parts(&mut self, parts: &[Part], out: &mut String) -> Result<(), Failure> {
        for part in parts {
            match part {
                Part::Text(t) => {
                    self.spend(1, Loc::default())?;
                    out.push_str(t);
                }
                Part::Expr(e) => {
                    let v = self.expr(e)?;
                    self.spend(1, e.loc)?;
                    use std::fmt::Write as _;
                    write!(out, "{v}").expect("invariant: writing to a String cannot fail");
                }
                Part::For { list, body, .. } => {
                    let items = match self.expr(list)? {
                        Value::List(xs) => xs,
                        Value::None => Arc::from(Vec::new()),
                        other => return Err(bad(list.loc, "for", &other)),
                    };
                    for item in items.iter() {
                        self.spend(1, list.loc)?;
                        self.locals.push(item.clone());
                        let r = self.parts(body, out);
                        self.locals.pop();
                        r?;
                    }
                }
                Part::If { branches, otherwise } => {
                    let mut taken = false;
                    for (cond, body) in branches {
                        if self.truthy(cond)? {
                            self.parts(body, out)?;
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        self.parts(otherwise, out)?;
                    }
                }
            }
            if out.len() > MAX_VALUE_BYTES {
                return Err(Failure { error: EvalError::TooLarge { limit: MAX_VALUE_BYTES }, loc: Loc::default() });
            }
        }
        Ok(())
    }

    /// Conditions in templates: a bool, or — for `any` data — presence (not none, not empty).
    fn truthy(&mut self, cond: &Expr) -> Result<bool, Failure> {
        Ok(match self.expr(cond)? {
            Value::Bool(b) => b,
            Value::None => false,
            Value::Text(s) => !s.is_empty(),
            Value::List(xs) => !xs.is_empty(),
            Value::Number(n) => n != 0.0,
            Value::Record(m) => !m.is_empty(),
            Value::Item(_) => true,
        })
    }

    fn expr(&mut self, expr: &Expr) -> Result<Value, Failure> {
        self.spend(1, expr.loc)?;
        let loc = expr.loc;
        Ok(match &expr.kind {
            ExprKind::Literal(v) => v.clone(),
            ExprKind::List(xs) => {
                let mut out = Vec::with_capacity(xs.len());
                for x in xs {
                    out.push(self.expr(x)?);
                }
                Value::list(out)
            }
            ExprKind::Input(id) => {
                self.env.input(*id).cloned().ok_or_else(|| unavailable(loc, format!("input #{}", id.0)))?
            }
            ExprKind::StageOutput { stage, port } => self
                .env
                .stage_output(*stage, *port)
                .cloned()
                .ok_or_else(|| unavailable(loc, format!("output #{port} of stage #{}", stage.0)))?,
            ExprKind::Local(id) => {
                self.locals.get(id.0 as usize).cloned().ok_or_else(|| unavailable(loc, format!("local #{}", id.0)))?
            }
            ExprKind::TestOutput => {
                self.env.test_output().cloned().ok_or_else(|| unavailable(loc, "the pipeline's output".to_string()))?
            }
            ExprKind::Field(base, name) => match self.expr(base)? {
                Value::Item(item) => item.get(name),
                Value::Record(map) => map.get(&**name).cloned().unwrap_or(Value::None),
                Value::None => Value::None,
                other => return Err(bad(loc, "field access", &other)),
            },
            ExprKind::Index(base, index) => {
                let base = self.expr(base)?;
                let index = self.expr(index)?;
                match (base, index) {
                    (Value::List(xs), Value::Number(n)) => {
                        let len = xs.len() as f64;
                        let i = if n < 0.0 { len + n.trunc() } else { n.trunc() };
                        if i >= 0.0 && i < len { xs[i as usize].clone() } else { Value::None }
                    }
                    (Value::Record(map), Value::Text(k)) => map.get(&*k).cloned().unwrap_or(Value::None),
                    (Value::Item(item), Value::Text(k)) => item.get(&k),
                    (Value::None, _) => Value::None,
                    (other, _) => return Err(bad(loc, "indexing", &other)),
                }
            }
            ExprKind::Unary(op, e) => {
                let v = self.expr(e)?;
                match (op, v) {
                    (UnOp::Not, Value::Bool(b)) => Value::Bool(!b),
                    (UnOp::Neg, Value::Number(n)) => Value::Number(-n),
                    (UnOp::Not, other) => return Err(bad(loc, "not", &other)),
                    (UnOp::Neg, other) => return Err(bad(loc, "-", &other)),
                }
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, loc)?,
            ExprKind::Call(func, args) => {
                let mut values = Vec::with_capacity(args.len());
                for a in args {
                    values.push(self.expr(a)?);
                }
                let cost = values.iter().map(value_weight).sum::<u64>();
                self.spend(cost, loc)?;
                func.call(&values, self.limits.now).map_err(|error| Failure { error, loc })?
            }
        })
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr, loc: Loc) -> Result<Value, Failure> {
        // `and` / `or` short-circuit.
        if matches!(op, BinOp::And | BinOp::Or) {
            let left = match self.expr(a)? {
                Value::Bool(x) => x,
                other => return Err(bad(a.loc, op.symbol(), &other)),
            };
            if (op == BinOp::And) != left {
                return Ok(Value::Bool(left));
            }
            return match self.expr(b)? {
                Value::Bool(x) => Ok(Value::Bool(x)),
                other => Err(bad(b.loc, op.symbol(), &other)),
            };
        }
        let x = self.expr(a)?;
        let y = self.expr(b)?;
        Ok(match (op, x, y) {
            (BinOp::Eq, x, y) => Value::Bool(x == y),
            (BinOp::Ne, x, y) => Value::Bool(x != y),
            (BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge, x, y) => {
                let ord = match (&x, &y) {
                    (Value::Number(p), Value::Number(q)) => p.partial_cmp(q),
                    (Value::Text(p), Value::Text(q)) => Some(p.cmp(q)),
                    _ => {
                        return Err(bad(
                            loc,
                            op.symbol(),
                            if matches!(x, Value::Number(_) | Value::Text(_)) { &y } else { &x },
                        ));
                    }
                };
                let Some(ord) = ord else { return Ok(Value::Bool(false)) };
                Value::Bool(match op {
                    BinOp::Lt => ord.is_lt(),
                    BinOp::Le => ord.is_le(),
                    BinOp::Gt => ord.is_gt(),
                    _ => ord.is_ge(),
                })
            }
            (BinOp::In, x, Value::List(xs)) => {
                self.spend(xs.len() as u64, loc)?;
                Value::Bool(xs.contains(&x))
            }
            (BinOp::In, Value::Text(x), Value::Text(y)) => Value::Bool(y.contains(&*x)),
            (BinOp::In, _, Value::None) => Value::Bool(false),
            (BinOp::Add, Value::Number(x), Value::Number(y)) => number(x + y, loc)?,
            (BinOp::Add, Value::Text(x), Value::Text(y)) => {
                if x.len() + y.len() > MAX_VALUE_BYTES {
                    return Err(Failure { error: EvalError::TooLarge { limit: MAX_VALUE_BYTES }, loc });
                }
                Value::text(format!("{x}{y}"))
            }
            (BinOp::Add, Value::List(x), Value::List(y)) => {
                self.spend((x.len() + y.len()) as u64, loc)?;
                Value::list(x.iter().chain(y.iter()).cloned().collect())
            }
            (BinOp::Sub, Value::Number(x), Value::Number(y)) => number(x - y, loc)?,
            (BinOp::Mul, Value::Number(x), Value::Number(y)) => number(x * y, loc)?,
            (BinOp::Div | BinOp::Rem, Value::Number(_), Value::Number(0.0)) => {
                return Err(Failure { error: EvalError::DivisionByZero, loc });
            }
            (BinOp::Div, Value::Number(x), Value::Number(y)) => number(x / y, loc)?,
            (BinOp::Rem, Value::Number(x), Value::Number(y)) => number(x % y, loc)?,
            (op, x, y) => {
                let culprit = if matches!(x, Value::Number(_)) { y } else { x };
                return Err(bad(loc, op.symbol(), &culprit));
            }
        })
    }
}

fn number(n: f64, loc: Loc) -> Result<Value, Failure> {
    if n.is_finite() {
        Ok(Value::Number(n))
    } else {
        Err(Failure { error: EvalError::NotFinite { function: "arithmetic" }, loc })
    }
}

/// Roughly how much work a function does with this argument.
fn value_weight(v: &Value) -> u64 {
    match v {
        Value::Text(s) => 1 + s.len() as u64 / 64,
        Value::List(xs) => 1 + xs.len() as u64,
        Value::Record(m) => 1 + m.len() as u64,
        _ => 1,
    }
}

fn bad(loc: Loc, op: &'static str, found: &Value) -> Failure {
    Failure { error: EvalError::BadOperand { op, found: found.kind_name() }, loc }
}

fn unavailable(loc: Loc, what: String) -> Failure {
    Failure { error: EvalError::Unavailable { what }, loc }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check_file;
    use crate::descriptor::{Descriptor, InputPort, OutputPort, PortForm, StageKind, StaticRegistry};
    use crate::ir::{Bound, Pipeline};
    use crate::span::SourceFile;
    use crate::types::Type;

    struct Inputs(Vec<Value>);

    impl Env for Inputs {
        fn input(&self, id: InputId) -> Option<&Value> {
            self.0.get(id.index())
        }
        fn stage_output(&self, _: StageId, _: u32) -> Option<&Value> {
            None
        }
    }

    fn registry() -> StaticRegistry {
        StaticRegistry::new([Descriptor {
            name: "echo".into(),
            version: semver::Version::new(1, 0, 0),
            kind: StageKind::Generator,
            summary: String::new(),
            inputs: vec![InputPort {
                name: "prompt".into(),
                ty: Type::Text,
                required: true,
                form: PortForm::Template,
                doc: String::new(),
            }],
            outputs: vec![OutputPort { name: "text".into(), ty: Type::Text, doc: String::new() }],
            config: vec![],
            grants: vec![],
        }])
    }

    /// A pipeline with inputs `n` (number), `t` (text), `xs` (list<text>), an `echo` stage `s`
    /// with the given template if there is one, and the given output.
    fn pipeline(output: &str, template: Option<&str>) -> Pipeline {
        let stage = template.map_or(String::new(), |t| format!(" stage \"s\" use=\"echo\" {{\n  prompt {t:?}\n }}\n"));
        let src = format!(
            "pipeline \"p\" {{\n input \"n\" type=\"number\"\n input \"t\" type=\"text\"\n input \"xs\" type=\"list<text>\"\n{stage} output {output:?}\n}}\n"
        );
        let c = check_file(&SourceFile::new("t.kdl", src), &registry());
        assert!(!c.has_errors(), "{:#?}", c.diagnostics);
        c.pipelines.into_iter().next().expect("one pipeline")
    }

    fn env() -> Inputs {
        Inputs(vec![Value::Number(3.0), Value::text("Hello"), Value::list(vec![Value::text("a"), Value::text("b")])])
    }

    fn eval(output: &str) -> Result<Value, Failure> {
        eval_expr(&pipeline(output, None).output, &env(), &[], Limits::default())
    }

    fn render(template: &str) -> Result<String, Failure> {
        let p = pipeline("s.text", Some(template));
        let Bound::Template(t) = &p.stages[0].inputs[0].value else { panic!() };
        render_template(t, &env(), Limits::default())
    }

    #[test]
    fn evaluates_arithmetic_and_logic() {
        assert_eq!(eval("input.n * 2 + 1"), Ok(Value::Number(7.0)));
        assert_eq!(eval("input.n > 2 and not (input.t == 'x')"), Ok(Value::Bool(true)));
        assert_eq!(eval("'a' in input.xs"), Ok(Value::Bool(true)));
        assert_eq!(eval("input.xs[-1]"), Ok(Value::text("b")));
        assert_eq!(eval("input.xs[5]"), Ok(Value::None));
    }

    #[test]
    fn division_by_zero_is_an_error() {
        assert_eq!(eval("input.n / 0").map_err(|f| f.error), Err(EvalError::DivisionByZero));
    }

    #[test]
    fn and_short_circuits() {
        assert_eq!(eval("input.n < 0 and input.n / 0 > 1"), Ok(Value::Bool(false)));
    }

    #[test]
    fn renders_templates() {
        assert_eq!(render("{{ for x in input.xs }}[{{ upper(x) }}]{{ end }}"), Ok("[A][B]".into()));
        assert_eq!(
            render("{{ if input.n > 5 }}big{{ elif input.n > 2 }}mid{{ else }}small{{ end }}"),
            Ok("mid".into())
        );
        assert_eq!(render("{{ input.xs }} / {{ input.n / 2 }}"), Ok("a, b / 1.5".into()));
    }

    #[test]
    fn fuel_bounds_the_work() {
        let p =
            pipeline("s.text", Some("{{ for a in input.xs }}{{ for b in input.xs }}{{ a }}{{ b }}{{ end }}{{ end }}"));
        let Bound::Template(t) = &p.stages[0].inputs[0].value else { panic!() };
        let big = Inputs(vec![Value::Number(0.0), Value::text(""), Value::list(vec![Value::text("x"); 2_000])]);
        let r = render_template(t, &big, Limits { fuel: 100_000, now: 0.0 });
        assert_eq!(r.map_err(|f| f.error), Err(EvalError::OutOfFuel));
    }

    #[test]
    fn output_size_is_bounded() {
        let p = pipeline("s.text", Some("{{ for a in input.xs }}{{ input.t }}{{ end }}"));
        let Bound::Template(t) = &p.stages[0].inputs[0].value else { panic!() };
        let big =
            Inputs(vec![Value::Number(0.0), Value::text("y".repeat(10_000)), Value::list(vec![Value::text("x"); 200])]);
        let r = render_template(t, &big, Limits::default());
        assert!(matches!(r.map_err(|f| f.error), Err(EvalError::TooLarge { .. })));
    }

    #[test]
    fn wrong_dynamic_types_are_errors_not_panics() {
        let r =
            eval_expr(&pipeline("input.n + 1", None).output, &Inputs(vec![Value::text("no")]), &[], Limits::default());
        assert!(matches!(r.map_err(|f| f.error), Err(EvalError::BadOperand { .. })));
    }
}
