//! The state one parse shares across the levels of a request: where the record being read
//! sits (for JSON Pointers), the problems and warnings found, the depth, the limits.

use crate::error::{escape_token, Code, FieldError, Warning};
use crate::parse::json::SyntaxError;
use crate::parse::rows::{Limits, Rows, MAX_ERRORS, MAX_WARNINGS};
use crate::precision::Precision;
use crate::schema::Schema;

/// Where in the request the record being read sits, for JSON Pointers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Loc {
    Single,
    Row(usize),
    Line(usize),
}

/// Why a parse stopped early.
pub(crate) enum Stop {
    Syntax(SyntaxError),
    /// Boxed: results travel through every call of the hot path, so they stay small.
    Limit(Box<FieldError>),
}

impl From<SyntaxError> for Stop {
    fn from(e: SyntaxError) -> Self {
        Stop::Syntax(e)
    }
}

pub(crate) type Step<T> = Result<T, Stop>;

/// Parse state shared by every level of the request.
pub(crate) struct Ctx<'a> {
    pub schema: &'a Schema,
    pub limits: &'a Limits,
    pub precision: Precision,
    pub rows: Rows,
    pub loc: Loc,
    /// Set when the current row has a problem.
    pub row_invalid: bool,
    pub partial: Option<bool>,
    pub(crate) depth: usize,
}

impl Ctx<'_> {
    /// The pointer of a member of the current record, e.g. `/rows/3/features/age`.
    #[cold]
    pub fn width(&self) -> usize {
        self.rows.width
    }

    pub fn pointer(&self, tail: &str) -> String {
        match self.loc {
            Loc::Single => tail.to_owned(),
            Loc::Row(i) => format!("/rows/{i}{tail}"),
            Loc::Line(i) => format!("/{i}{tail}"),
        }
    }

    /// Records a problem of the current row; the pointer is built only when it is kept.
    pub fn report(&mut self, tail: impl FnOnce() -> String, code: Code, message: String) {
        self.row_invalid = true;
        if self.rows.errors.len() < MAX_ERRORS {
            let pointer = self.pointer(&tail());
            self.rows
                .errors
                .push(FieldError::new(pointer, code, message));
        }
    }

    /// Records a warning about the current row's value of `feature`.
    #[cold]
    pub fn warn(&mut self, feature: &str, code: Code, message: String, bound: Option<f64>) {
        if self.rows.warnings.len() < MAX_WARNINGS {
            let pointer = self.pointer(&feature_tail(feature));
            let row = self.rows.len().saturating_sub(1);
            self.rows.warnings.push(Warning {
                pointer,
                code,
                message,
                feature: feature.to_owned(),
                row,
                bound,
            });
        }
    }

    /// Stops the parse at a limit.
    #[cold]
    pub fn exceed(&self, code: Code, message: String) -> Stop {
        Stop::Limit(Box::new(FieldError::new(self.pointer(""), code, message)))
    }

    pub fn enter(&mut self) -> Step<()> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            let msg = format!("nesting deeper than max_depth = {}", self.limits.max_depth);
            return Err(self.exceed(Code::TooDeep, msg));
        }
        Ok(())
    }

    pub fn leave(&mut self) {
        self.depth -= 1;
    }

    #[inline]
    pub fn check_string(&self, len: usize) -> Step<()> {
        if len > self.limits.max_string_bytes {
            let msg = format!(
                "a string of {len} bytes; max_string_bytes is {}",
                self.limits.max_string_bytes
            );
            return Err(self.exceed(Code::StringTooLong, msg));
        }
        Ok(())
    }

    /// Starts a new row of NaN and makes it current.
    pub(crate) fn push_row(&mut self, loc: Loc) -> Step<()> {
        self.loc = loc;
        if self.rows.len() >= self.limits.max_rows {
            let msg = format!("more than max_rows = {} rows", self.limits.max_rows);
            return Err(self.exceed(Code::TooManyRows, msg));
        }
        self.row_invalid = false;
        let width = self.rows.width;
        self.rows
            .values
            .resize(self.rows.values.len() + width, f64::NAN);
        let n_context = self.rows.n_context;
        self.rows
            .context
            .resize(self.rows.context.len() + n_context, None);
        self.rows.valid.push(true);
        Ok(())
    }

    pub(crate) fn finish_row(&mut self) {
        if self.row_invalid {
            if let Some(v) = self.rows.valid.last_mut() {
                *v = false;
            }
        }
    }

    /// The values of the current (last) row.
    #[inline]
    pub fn current_row(&mut self) -> &mut [f64] {
        let start = self.rows.values.len() - self.rows.width;
        &mut self.rows.values[start..]
    }
}

#[cold]
pub(crate) fn feature_tail(name: &str) -> String {
    format!("/features/{}", escape_token(name))
}
